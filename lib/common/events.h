// Owns the list of every log event pcmoe writes: its stable dotted name and a one-line meaning.
// The README's event table is generated from it (events_markdown), and a test scans lib/ and
// apps/ for PCMOE_{DEBUG,INFO,WARN,ERROR,LOG}(..., "name") so that an event is listed exactly when
// the code writes it. Adding a log event means adding a line here. Thread-safe (constants).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace pcmoe::events {

struct EventInfo {
  std::string_view name;     // "hub.party_lost"
  std::string_view fields;   // the main fields, for the table ("party, reason"); "" if none worth naming
  std::string_view meaning;  // one line
};

// Every event, grouped by the part of pcmoe that writes it, sorted by name within a group.
const std::vector<EventInfo>& all();
// The markdown table of the README's "Logs" section.
std::string markdown();

}  // namespace pcmoe::events
