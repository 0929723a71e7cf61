// Helper for the tests that keep a generated part of README.md in sync with the code (the
// configuration reference, the log-event table): the text between a begin and an end marker must
// equal what the code generates. With PCMOE_WRITE_REFERENCE=1 in the environment the section is
// rewritten instead (and the test warns that it did).
#pragma once

#include <string>

namespace pcmoe::test {

// The README's section between the line `begin` (including its newline) and `end`; checks it with
// Catch2 against `generated`, or rewrites it (see above). REQUIREs both markers.
void check_readme_section(const std::string& begin, const std::string& end, const std::string& generated);

}  // namespace pcmoe::test
