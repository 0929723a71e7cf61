// A real federation of pcmoe-hub and pcmoe-party processes for tests (see federation.h).
#include "federation.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>

#include "common/fs.h"
#include "net/curve.h"

namespace pcmoe::test {

std::vector<std::string> tiny_overrides(int steps, int eval_every) {
  return {"train.steps=" + std::to_string(steps),
          "train.warmup_steps=2",
          "train.eval_every=" + std::to_string(eval_every),
          "train.eval_batches=1",
          "train.batch_size=4",
          "model.seq_len=64"};
}

FederationOptions fault_options(int steps, int snapshot_every, int party_heartbeat_ms,
                                const std::vector<std::string>& hub_extra) {
  FederationOptions o;
  o.shared = tiny_overrides(steps, 0);  // evaluation at the end only
  o.hub = {"hub.party_timeout_ms=3000", "hub.heartbeat_ms=500",
           "hub.snapshot_every=" + std::to_string(snapshot_every)};
  o.hub.insert(o.hub.end(), hub_extra.begin(), hub_extra.end());
  o.party = {"party.request_timeout_ms=6000", "party.heartbeat_ms=" + std::to_string(party_heartbeat_ms),
             "party.hub_timeout_ms=30000"};
  return o;
}

namespace {
void add_sets(std::vector<std::string>& argv, const std::vector<std::string>& sets) {
  for (const auto& s : sets) {
    argv.push_back("--set");
    argv.push_back(s);
  }
}
}  // namespace

Federation::Federation(std::string root, FederationOptions options)
    : root_(std::move(root)), options_(std::move(options)) {
  if (options_.curve) make_keys();
}

void Federation::make_keys() {
  fs::make_dirs(root_ + "/keys");
  std::vector<std::string> names = {"hub", "operator"};
  for (const auto& id : options_.ids) names.push_back("party-" + id);
  for (const auto& name : names) {
    const net::CurveKeyPair keys = net::generate_keypair();
    net::write_key_file(key_file(name), keys);
    net::write_public_key_file(public_key_file(name), keys.public_key);
    if (name == "hub") hub_key_ = keys.public_key;
    if (name == "operator") operator_keys_ = keys;
  }
}

std::optional<proto::Status> Federation::status() const {
  return hub_status(endpoint_, 2000, operator_keys_, hub_key_);
}

bool Federation::control(const std::string& action) const {
  return hub_control(endpoint_, action, 2000, operator_keys_, hub_key_);
}

std::vector<std::string> Federation::party_security(const std::string& id) const {
  if (!options_.curve) return {"party.insecure=true"};
  return {"party.curve.secret_key_file=" + key_file("party-" + id),
          "party.curve.hub_public_key_file=" + public_key_file("hub")};
}

Federation::~Federation() {
  parties_.clear();
  hub_.reset();
  if (const char* keep = std::getenv("PCMOE_TEST_KEEP")) {
    std::error_code ec;
    const auto to = std::filesystem::path(keep) / std::filesystem::path(root_).filename();
    std::filesystem::create_directories(to, ec);
    std::filesystem::copy(root_, to, std::filesystem::copy_options::recursive, ec);
  }
}

bool Federation::launch_hub(const std::string& bind, const std::vector<std::string>& extra, int timeout_ms) {
  const size_t starts = log_events(hub_log(), "hub.started").size();
  std::vector<std::string> argv = {app("pcmoe-hub"), "--config", config("hub.yaml")};
  add_sets(argv, options_.shared);
  add_sets(argv, {"hub.bind=" + bind, "hub.out_dir=" + hub_dir(), "hub.log_file=" + hub_log()});
  if (options_.curve) {
    add_sets(argv, {"hub.secret_key_file=" + key_file("hub"), "hub.ctl_key_file=" + key_file("operator")});
    for (size_t i = 0; i < options_.ids.size(); ++i) {
      add_sets(argv, {"hub.parties[" + std::to_string(i) +
                      "].public_key_file=" + public_key_file("party-" + options_.ids[i])});
    }
  } else {
    add_sets(argv, {"hub.insecure=true"});
  }
  add_sets(argv, options_.hub);
  add_sets(argv, extra);
  hub_ = std::make_unique<Process>(argv, root_ + "/hub.out", root_ + "/hub.err");
  // The new hub's hub.started line carries the endpoint it bound (an ephemeral port resolved).
  bool up = false;
  wait_until(
      [&] {
        auto started = log_events(hub_log(), "hub.started");
        if (started.size() > starts) {
          endpoint_ = json_string(started.back(), "endpoint").value_or("");
          up = !endpoint_.empty();
        }
        return up || !hub_->running();
      },
      timeout_ms);
  return up;
}

bool Federation::start_hub(int timeout_ms) { return launch_hub("tcp://127.0.0.1:*", {}, timeout_ms); }

bool Federation::restart_hub(const std::vector<std::string>& extra, int timeout_ms) {
  return launch_hub(endpoint_, extra, timeout_ms);
}

void Federation::start_party(const std::string& id, const std::vector<std::string>& extra,
                             const std::vector<std::string>& wrapper) {
  std::vector<std::string> argv = wrapper;
  argv.insert(argv.end(), {app("pcmoe-party"), "--config", config("party-" + id + ".yaml")});
  add_sets(argv, options_.shared);
  add_sets(argv, {"party.hub=" + endpoint_, "run.out_dir=" + party_dir(id), "run.log_file=" + party_log(id)});
  add_sets(argv, party_security(id));
  add_sets(argv, options_.party);
  add_sets(argv, extra);
  const std::string base = root_ + "/party-" + id;
  parties_[id] = std::make_unique<Process>(argv, base + ".out", base + ".err");
}

void Federation::start_parties() {
  for (const auto& id : options_.ids) start_party(id);
}

std::optional<proto::Status> Federation::wait_status(const std::function<bool(const proto::Status&)>& pred,
                                                     int timeout_ms) {
  std::optional<proto::Status> last;
  bool ok = wait_until(
      [&] {
        auto s = status();
        if (s) last = s;
        return s && pred(*s);
      },
      timeout_ms, 25);
  return ok ? last : std::nullopt;
}

int64_t Federation::step() const {
  auto s = status();
  return s ? s->step : -1;
}

bool Federation::wait_all(int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto left = [&] {
    return static_cast<int>(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now())
               .count()));
  };
  bool all = true;
  for (auto& [id, p] : parties_) all = p->wait(left()).has_value() && all;
  if (hub_) all = hub_->wait(left()).has_value() && all;
  return all;
}

std::string Federation::require_clean_finish(int64_t steps, int timeout_ms, bool all_exported) {
  FED_REQUIRE(*this, wait_all(timeout_ms));
  FED_CHECK(*this, hub().exit_code() == 0);
  for (const auto& id : ids()) {
    INFO("party " << id);
    FED_CHECK(*this, party(id).exit_code() == 0);
    if (all_exported) CHECK(fs::exists(party_dir(id) + "/model.pcmoe"));
  }
  auto finished = log_events(hub_log(), "hub.finished");
  REQUIRE(finished.size() == 1);
  CHECK(json_number(finished[0], "step") == steps);
  CHECK(json_string(finished[0], "reason") == "finished");
  return finished[0];
}

std::string Federation::report() const {
  std::string out = tail(hub_log()) + tail(root_ + "/hub.err", 5);
  for (const auto& [id, p] : parties_) out += tail(party_log(id)) + tail(root_ + "/party-" + id + ".err", 5);
  return out;
}

const proto::PartyStatus* find_party(const proto::Status& s, const std::string& id) {
  for (const auto& p : s.parties) {
    if (p.party_id == id) return &p;
  }
  return nullptr;
}

bool alive_in(const proto::Status& s, const std::string& id) {
  const auto* p = find_party(s, id);
  return p != nullptr && p->alive;
}

}  // namespace pcmoe::test
