// A party's connection to its hub, on its own thread (see hub_link.h).
#include "party/hub_link.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/error.h"
#include "common/log.h"
#include "net/poll.h"
#include "net/rpc.h"

namespace pcmoe::party {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kMaxWaitMs = 50;        // the loop re-checks stop_ and refused() at least this often
constexpr int kCloseLingerMs = 1000;  // delivery of the last messages after close

}  // namespace

HubLink::HubLink(zmq::context_t& ctx, const net::ClientOptions& options, const proto::Limits& limits,
                 int heartbeat_ms)
    : client_(std::make_unique<net::Client>(ctx, options)),
      limits_(limits),
      heartbeat_ms_(heartbeat_ms),
      last_heard_(Clock::now()) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw TransportError(std::string("eventfd failed: ") + std::strerror(errno));
  thread_ = std::thread([this] { loop(); });
}

HubLink::~HubLink() {
  stop_ = true;
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  ::close(wake_fd_);
}

void HubLink::send(proto::Message m, int send_timeout_ms) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    outbox_.push_back({std::move(m), send_timeout_ms});
  }
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

std::optional<HubLink::Received> HubLink::poll(int timeout_ms) {
  std::unique_lock<std::mutex> lock(mu_);
  if (inbox_.empty() && timeout_ms > 0) {
    inbox_cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [this] { return !inbox_.empty(); });
  }
  if (inbox_.empty()) return std::nullopt;
  Received r = std::move(inbox_.front());
  inbox_.pop_front();
  return r;
}

void HubLink::set_heartbeat(bool enabled, const std::string& state, int64_t step) {
  std::lock_guard<std::mutex> lock(mu_);
  hb_enabled_ = enabled;
  hb_state_ = state;
  hb_step_ = step;
}

HubLink::TimePoint HubLink::last_heard() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_heard_;
}

bool HubLink::party_lost(uint32_t index) const {
  std::lock_guard<std::mutex> lock(mu_);
  return index < lost_.size() && lost_[index];
}

std::optional<proto::TurnNotice> HubLink::current_turn() const {
  std::lock_guard<std::mutex> lock(mu_);
  return turn_;
}

void HubLink::send_now(const Outgoing& o) {
  if (!net::send_message(*client_, o.message, o.timeout_ms)) {
    PCMOE_WARN("party.hub_send_failed")
        .kv("type", std::string(proto::msg_type_name(proto::type_of(o.message))))
        .kv("endpoint", client_->endpoint());
  }
}

void HubLink::heartbeat_if_due() {
  proto::Heartbeat hb;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!hb_enabled_ || Clock::now() - last_hb_sent_ < std::chrono::milliseconds(heartbeat_ms_)) return;
    hb.seq = ++hb_seq_;
    hb.step = hb_step_;
    hb.state = hb_state_;
  }
  last_hb_sent_ = Clock::now();
  send_now({hb, 200});
}

void HubLink::note_liveness(const proto::Message& m) {
  const std::vector<proto::PartyEntry>* dir = nullptr;
  if (auto* d = std::get_if<proto::Directory>(&m)) dir = &d->directory;
  if (auto* w = std::get_if<proto::Welcome>(&m)) dir = &w->directory;
  if (dir == nullptr) return;
  std::vector<bool> lost;
  for (const auto& e : *dir) {
    if (e.index >= lost.size()) lost.resize(e.index + 1, false);
    lost[e.index] = !e.alive;
  }
  std::lock_guard<std::mutex> lock(mu_);
  lost_ = std::move(lost);
}

void HubLink::loop() {
  net::Poller poller;
  poller.add(client_->socket());
  const size_t wake = poller.add_fd(wake_fd_);
  while (!stop_) {
    refused_ = client_->refused();
    server_key_suspect_ = client_->failed_handshakes() >= 3 && !client_->handshake_succeeded();
    std::deque<Outgoing> out;
    {
      std::lock_guard<std::mutex> lock(mu_);
      out.swap(outbox_);
    }
    for (const auto& o : out) send_now(o);
    heartbeat_if_due();
    const auto next_hb = last_hb_sent_ + std::chrono::milliseconds(heartbeat_ms_);
    const auto until_hb =
        std::chrono::duration_cast<std::chrono::milliseconds>(next_hb - Clock::now()).count();
    poller.wait(static_cast<int>(std::clamp<int64_t>(until_hb, 1, kMaxWaitMs)));
    if (poller.ready(wake)) {
      uint64_t n = 0;
      (void)!::read(wake_fd_, &n, sizeof n);
    }
    while (true) {
      std::optional<proto::Message> m;
      try {
        m = net::recv_message(*client_, 0, limits_);
      } catch (const proto::DecodeError& e) {
        PCMOE_WARN("party.bad_hub_message").kv("reason", e.what());
        continue;
      }
      if (!m) break;
      note_liveness(*m);
      std::lock_guard<std::mutex> lock(mu_);
      last_heard_ = Clock::now();
      if (auto* t = std::get_if<proto::TurnNotice>(&*m)) {
        turn_ = std::move(*t);  // for the expert host, not for the session
        continue;
      }
      inbox_.push_back({last_heard_, std::move(*m)});
      inbox_cv_.notify_one();
    }
  }
  // Closing: what the main thread queued last (a bye) still goes out, and libzmq keeps trying to
  // deliver it for a moment after the socket is closed.
  std::deque<Outgoing> out;
  {
    std::lock_guard<std::mutex> lock(mu_);
    out.swap(outbox_);
  }
  for (const auto& o : out) send_now(o);
  client_->socket().set(zmq::sockopt::linger, kCloseLingerMs);
  client_.reset();
}

}  // namespace pcmoe::party
