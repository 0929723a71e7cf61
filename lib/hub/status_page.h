// Owns the hub's HTML status page (GET / when hub.http is set): one self-contained page, no
// external resources, whose script fetches status.json every 2 s and redraws the run header, the
// party table (liveness, state, steps, losses, step times, memory, traffic), each party's recent
// training and held-out losses, and the global expert load per MoE layer coloured by host party
// with the uniform-load line. Read-only: it has no buttons and the server accepts only GET.
#pragma once

#include <string>

namespace pcmoe::hub {

const std::string& status_page_html();

}  // namespace pcmoe::hub
