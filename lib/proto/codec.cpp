// Owns encode() and decode() (see codec.h): the frame layout, the tag, the "t"/"v" header keys,
// the order of the checks and the checks that span several fields.
#include "proto/codec.h"

#include <fmt/format.h>

#include <cctype>

#include "proto/field_reader.h"
#include "proto/field_writer.h"

namespace pcmoe::proto {

const std::string& protocol_tag() {
  static const std::string tag = fmt::format("PCMOE/{}", kProtocolMajor);
  return tag;
}

std::vector<Blob> encode(const Message& m) {
  static const Blob tag = Blob::from_string(protocol_tag());
  std::vector<Blob> frames;
  frames.reserve(4);
  frames.push_back(tag);
  frames.emplace_back();  // the header, filled below
  FieldWriter w(frames);
  w.raw_uint("t", static_cast<uint64_t>(type_of(m)));
  w.raw_uint("v", kProtocolMinor);
  std::visit([&](const auto& x) { fields(w, x, Of<std::decay_t<decltype(x)>>{}); }, m);
  frames[1] = Blob::from_string(w.finish());
  return frames;
}

namespace {

// Printable prefix of untrusted bytes, for error messages.
std::string printable(const Blob& b, size_t max_len = 16) {
  std::string s;
  for (size_t i = 0; i < b.size && i < max_len; ++i) {
    char c = static_cast<char>(b.data[i]);
    s += std::isprint(static_cast<unsigned char>(c)) ? c : '?';
  }
  return b.size > max_len ? s + "..." : s;
}

void check_tag(const Blob& f) {
  const std::string& tag = protocol_tag();
  std::string_view got(reinterpret_cast<const char*>(f.data), f.size);
  if (got == tag) return;
  constexpr std::string_view kPrefix = "PCMOE/";
  if (got.size() > kPrefix.size() && got.size() <= kPrefix.size() + 9 &&
      got.substr(0, kPrefix.size()) == kPrefix) {
    std::string_view major = got.substr(kPrefix.size());
    bool digits = true;
    for (char c : major) digits = digits && c >= '0' && c <= '9';
    if (digits) {
      throw DecodeError(
          ErrorCode::bad_version,
          fmt::format("peer speaks protocol major {}, this build speaks {}", major, kProtocolMajor));
    }
  }
  throw DecodeError(ErrorCode::malformed, fmt::format("frame 0 is not a protocol tag: '{}'", printable(f)));
}

void check_sizes(const std::vector<Blob>& frames, const Limits& limits) {
  if (frames.size() < 2) {
    throw DecodeError(ErrorCode::malformed,
                      fmt::format("{} frame(s); a message has a tag and a header", frames.size()));
  }
  check_tag(frames[0]);
  if (frames[1].size > limits.max_header_bytes) {
    throw DecodeError(ErrorCode::too_large,
                      fmt::format("header of {} bytes (limit {})", frames[1].size, limits.max_header_bytes));
  }
  if (frames.size() - 2 > limits.max_tensors) {
    throw DecodeError(ErrorCode::too_large,
                      fmt::format("{} tensor frames (limit {})", frames.size() - 2, limits.max_tensors));
  }
  for (size_t i = 2; i < frames.size(); ++i) {
    if (frames[i].size > limits.max_frame_bytes) {
      throw DecodeError(ErrorCode::too_large, fmt::format("frame {} has {} bytes (limit {})", i,
                                                          frames[i].size, limits.max_frame_bytes));
    }
  }
}

template <class T>
Message read_as(FieldReader& r) {
  T x;
  fields(r, x, Of<T>{});
  return x;
}

Message read_body(MsgType t, FieldReader& r) {
  switch (t) {
#define PCMOE_MSG_READ(T, name, num) \
  case MsgType::name:                \
    return read_as<T>(r);
    PCMOE_MESSAGES(PCMOE_MSG_READ)
#undef PCMOE_MSG_READ
  }
  throw DecodeError(ErrorCode::unknown_type,
                    fmt::format("unknown message type {}", static_cast<unsigned>(t)));
}

template <class A, class B>
bool same_shape(const std::vector<std::vector<A>>& a, const std::vector<std::vector<B>>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].size() != b[i].size()) return false;
  }
  return true;
}

[[noreturn]] void bad(ErrorCode code, const std::string& why) { throw DecodeError(code, why); }

// Checks that relate several fields of one message.
void check_across(const Message& m) {
  if (auto* f = std::get_if<ExpertForward>(&m)) {
    if (f->expert_ids.shape[0] != f->rows.shape[0]) {
      bad(ErrorCode::bad_shape,
          fmt::format("{} expert ids for {} rows", f->expert_ids.shape[0], f->rows.shape[0]));
    }
  } else if (auto* s = std::get_if<Snapshot>(&m)) {
    if (s->names.size() != s->tensors.size()) {
      bad(ErrorCode::bad_field, fmt::format("{} names for {} tensors", s->names.size(), s->tensors.size()));
    }
  } else if (auto* p = std::get_if<Pool>(&m)) {
    if (p->names.size() != p->tensors.size()) {
      bad(ErrorCode::bad_field, fmt::format("{} names for {} tensors", p->names.size(), p->tensors.size()));
    }
  } else if (auto* r = std::get_if<StepReport>(&m)) {
    if (!same_shape(r->expert_counts, r->gate_mean)) {
      bad(ErrorCode::bad_field, "'gate' and 'cnt' differ in shape");
    }
  } else if (auto* w = std::get_if<Welcome>(&m)) {
    if (w->placement.size() != w->moe_layers.size()) {
      bad(ErrorCode::bad_field,
          fmt::format("'place' has {} rows for {} MoE layers", w->placement.size(), w->moe_layers.size()));
    }
    for (const auto& row : w->placement) {
      if (row.size() != w->n_experts) {
        bad(ErrorCode::bad_field, fmt::format("'place' row of {} for {} experts", row.size(), w->n_experts));
      }
    }
  }
}

}  // namespace

Message decode(const std::vector<Blob>& frames, const Limits& limits) {
  check_sizes(frames, limits);
  const Blob& h = frames[1];
  MpReader mp(h.data, h.size);
  if (h.size == 0 || mp.peek() != MpKind::map) {
    throw DecodeError(ErrorCode::malformed, "header is not a msgpack map");
  }
  FrameCursor cursor{&frames, 2};
  FieldReader top(mp, limits, cursor);
  if (!mp.at_end()) {
    throw DecodeError(ErrorCode::malformed, fmt::format("{} bytes after the header map", mp.remaining()));
  }
  uint64_t t = 0;
  top.uint("t", t);
  if (!known_type(t)) throw DecodeError(ErrorCode::unknown_type, fmt::format("unknown message type {}", t));
  auto type = static_cast<MsgType>(t);
  uint64_t rid = 0;
  try {
    if (top.has("rid")) top.uint("rid", rid);
  } catch (const DecodeError&) {
    rid = 0;  // reported below with the type, as a bad field
  }
  try {
    uint64_t minor = 0;
    top.uint("v", minor);  // any minor: higher ones only add keys, which are ignored
    Message m = read_body(type, top);
    check_across(m);
    if (cursor.next != frames.size()) {
      throw DecodeError(ErrorCode::malformed, fmt::format("{} tensor frames, the header declares {}",
                                                          frames.size() - 2, cursor.next - 2));
    }
    return m;
  } catch (DecodeError& e) {
    e.type = type;
    e.request_id = rid;
    throw;
  }
}

}  // namespace pcmoe::proto
