// Owns how pcmoe-ctl shows the hub's answers: the human status report (header line, party table,
// global expert load per layer as percentages) and the JSON forms (--json: one object per reply,
// built with common/json.h). Pure functions of the messages; thread-safe.
#pragma once

#include <functional>
#include <string>

#include "common/json.h"
#include "proto/messages.h"

namespace pcmoe::hub {

std::string format_status(const proto::Status& s);
std::string status_json(const proto::Status& s);
// The object status_json writes, still open for more fields; `extend_party(i, o)` may add fields
// to the object of party i before it is closed (the HTTP status JSON adds step times).
JsonObject status_object(const proto::Status& s,
                         const std::function<void(size_t, JsonObject&)>& extend_party = nullptr);
std::string format_ack(const std::string& action, const proto::ControlAck& a);
std::string ack_json(const std::string& action, const proto::ControlAck& a);

}  // namespace pcmoe::hub
