// Exception-to-exit-code boundary of the binaries (see app_main.h).
#include "common/app_main.h"

#include <fmt/format.h>

#include <cstdio>
#include <exception>
#include <string_view>

#include "common/cli.h"
#include "common/error.h"
#include "common/log.h"

namespace pcmoe {

namespace {
void report(const std::string& program, const char* kind, const char* what) {
  std::fprintf(stderr, "%s: %s%s\n", program.c_str(), kind, what);
  PCMOE_ERROR("process.fatal").kv("kind", kind).kv("error", what);
}
}  // namespace

int run_main(const std::string& program, const std::function<int()>& body) {
  try {
    return body();
  } catch (const cli::VersionRequested& v) {
    std::printf("%s\n", v.what());
    return kExitOk;
  } catch (const ConfigError& e) {
    // One problem: one line. Several (a config file with many mistakes): one per line below.
    const bool one = std::string_view(e.what()).find('\n') == std::string_view::npos;
    std::fprintf(stderr, "%s: configuration error:%s%s\n", program.c_str(), one ? " " : "\n", e.what());
    // A refusal found once the log is set up (a hub's reject, a key refused, a memory limit, a model
    // that does not fit) also goes to the JSON log, where operators look.
    if (log::initialized())
      PCMOE_ERROR("process.fatal").kv("kind", "configuration error").kv("error", e.what());
    return kExitUsage;
  } catch (const TransportError& e) {
    report(program, "transport error: ", e.what());
    return kExitTransport;
  } catch (const ProtocolError& e) {
    report(program, "protocol error: ", e.what());
    return kExitTransport;
  } catch (const DataError& e) {
    report(program, "data error: ", e.what());
    return kExitFatal;
  } catch (const std::exception& e) {
    report(program, "fatal: ", e.what());
    return kExitFatal;
  }
}

}  // namespace pcmoe
