// Test helpers for lib/proto: the fixed sample of every message type (the values the golden files
// in proto/golden/ were written from: NEVER change them, add new samples instead) and a
// field-by-field comparison of two messages.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "proto/messages.h"

namespace pcmoe::test {

// One message of every MsgType, every field set to a non-default value, in MsgType order: the
// samples of protocol 1.0 (proto/golden/1.0/<type>.bin), also written at 1.1 and 1.2, and those of
// the types added later (turn_notice: 1.2 on).
std::vector<proto::Message> golden_messages();
// The samples added by 1.1 (fp8 tensors with scales, reply timelines), as (file stem, message):
// proto/golden/1.1/<stem>.bin.
std::vector<std::pair<std::string, proto::Message>> golden_messages_1_1();
// The samples 1.2 added: a hello and a welcome with a session token, a welcome of concurrent rounds,
// a pool with its parties' steps, the concurrent rounds' messages: proto/golden/1.2/<stem>.bin.
std::vector<std::pair<std::string, proto::Message>> golden_messages_1_2();
// One sample of every MsgType of today's protocol, in MsgType order (golden_messages() and the
// types added since).
std::vector<proto::Message> every_type_sample();

// Every field as (path, value text); tensors as dtype, shape and a hash of the bytes; doubles
// by their exact bits.
std::vector<std::pair<std::string, std::string>> flatten(const proto::Message& m);

// "" when a and b carry the same values, else the first difference ("field: a vs b").
std::string message_diff(const proto::Message& a, const proto::Message& b);

std::string golden_dir(const std::string& version);  // <source>/proto/golden/<version>

}  // namespace pcmoe::test
