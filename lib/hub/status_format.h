// Owns how pcmoe-ctl shows the hub's answers: the human status report (header line, party table,
// global expert load per layer as percentages) and the JSON forms (--json: one object per reply,
// built with common/json.h). Pure functions of the messages; thread-safe.
#pragma once

#include <string>

#include "proto/messages.h"

namespace pcmoe::hub {

std::string format_status(const proto::Status& s);
std::string status_json(const proto::Status& s);
std::string format_ack(const std::string& action, const proto::ControlAck& a);
std::string ack_json(const std::string& action, const proto::ControlAck& a);

}  // namespace pcmoe::hub
