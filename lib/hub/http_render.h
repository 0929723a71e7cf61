// Owns what the hub's HTTP service answers, as pure functions of a HubView: the status JSON
// (/status.json: pcmoe-ctl status --json's object plus each party's step times, joins and recent
// losses, and the hub's counters) and the Prometheus metrics (/metrics). The HTML page is status_page.h.
// Thread-safe (pure functions).
#pragma once

#include <string>

#include "hub/hub_view.h"

namespace pcmoe::hub {

std::string view_json(const HubView& v);
std::string view_metrics(const HubView& v);

}  // namespace pcmoe::hub
