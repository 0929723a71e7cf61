// Empty translation unit that owns the shared precompiled <torch/torch.h> (see PcmoeDeps.cmake).
