// One connection to one expert host on its own thread, and the requester's inbox (see peer_worker.h).
#include "party/peer_worker.h"

#include <fmt/format.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/error.h"
#include "common/log.h"
#include "common/trace.h"
#include "net/frames.h"
#include "net/poll.h"
#include "party/trace_keys.h"

namespace pcmoe::party {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int kSliceMs = 50;

}  // namespace

// ---- PeerInbox ----

void PeerInbox::set_sink(const Expected& e, ReplySink sink) {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [x, s] : sinks_) {
    if (x.host == e.host && x.expect == e.expect && x.request_id == e.request_id) {
      s = std::move(sink);
      return;
    }
  }
  sinks_.emplace_back(e, std::move(sink));
}

void PeerInbox::clear_sinks() {
  std::lock_guard<std::mutex> lock(mu_);
  sinks_.clear();
}

void PeerInbox::deliver(uint32_t host, proto::Message m) {
  ReplySink sink;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = sinks_.begin(); it != sinks_.end(); ++it) {
      if (it->first.host == host && reply_matches(m, it->first)) {
        sink = std::move(it->second);
        sinks_.erase(it);
        break;
      }
    }
  }
  if (sink) sink(m);  // staging, in parallel with the other hosts' workers
  std::lock_guard<std::mutex> lock(mu_);
  entries_.push_back({host, Clock::now(), std::move(m), ""});
  cv_.notify_all();
}

void PeerInbox::fail(uint32_t host, std::string why) {
  std::lock_guard<std::mutex> lock(mu_);
  entries_.push_back({host, Clock::now(), std::nullopt, std::move(why)});
  cv_.notify_all();
}

std::optional<std::pair<size_t, PeerInbox::Entry>> PeerInbox::take(const std::vector<Expected>& pending,
                                                                   std::chrono::milliseconds timeout,
                                                                   std::chrono::milliseconds stale) {
  std::unique_lock<std::mutex> lock(mu_);
  const auto until = Clock::now() + timeout;
  while (true) {
    const auto now = Clock::now();
    for (auto it = entries_.begin(); it != entries_.end();) {
      size_t k = pending.size();
      bool ours = false;
      for (size_t i = 0; i < pending.size(); ++i) {
        if (pending[i].host != it->host) continue;
        ours = true;
        if (!it->message || reply_matches(*it->message, pending[i])) {
          k = i;
          break;
        }
      }
      if (k < pending.size()) {
        Entry e = std::move(*it);
        entries_.erase(it);
        return std::make_pair(k, std::move(e));
      }
      if (ours && now - it->at > stale) {
        PCMOE_DEBUG("party.stale_reply").kv("host", static_cast<int64_t>(it->host));
        it = entries_.erase(it);  // a late answer to an abandoned request
      } else {
        ++it;
      }
    }
    if (woken_) {
      woken_ = false;
      return std::nullopt;
    }
    if (cv_.wait_until(lock, until) == std::cv_status::timeout) return std::nullopt;
  }
}

void PeerInbox::wake() {
  std::lock_guard<std::mutex> lock(mu_);
  woken_ = true;
  cv_.notify_all();
}

// ---- PeerWorker ----

PeerWorker::PeerWorker(zmq::context_t& ctx, const net::ClientOptions& options, const proto::Limits& limits,
                       PeerInbox& inbox, uint32_t host, int request_timeout_ms)
    : client_(std::make_unique<net::Client>(ctx, options)),
      limits_(limits),
      inbox_(inbox),
      host_(host),
      request_timeout_ms_(request_timeout_ms) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw TransportError(std::string("eventfd failed: ") + std::strerror(errno));
  thread_ = std::thread([this] { loop(); });
}

PeerWorker::~PeerWorker() {
  stop_ = true;
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
  if (thread_.joinable()) thread_.join();
  ::close(wake_fd_);
}

void PeerWorker::send(std::vector<proto::Blob> frames, std::pair<uint64_t, char> traced) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    outbox_.push_back({std::move(frames), Clock::now(), traced});
  }
  const uint64_t one = 1;
  (void)!::write(wake_fd_, &one, sizeof one);
}

void PeerWorker::flush() {
  while (!stop_) {
    Outgoing next;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (outbox_.empty()) return;
      next = outbox_.front();
    }
    // In slices, receiving in between, so that replies keep flowing while a send waits.
    if (!client_->send(next.frames, kSliceMs)) {
      if (Clock::now() - next.queued > std::chrono::milliseconds(request_timeout_ms_)) {
        std::lock_guard<std::mutex> lock(mu_);
        outbox_.clear();
        inbox_.fail(host_, fmt::format("cannot send to it at {} within {} ms", client_->endpoint(),
                                       request_timeout_ms_));
      }
      receive();
      continue;
    }
    if (next.traced.first != 0)
      trace::mark("w", next.traced.first, next.traced.second, trace::now_ns(), host_);
    std::lock_guard<std::mutex> lock(mu_);
    outbox_.pop_front();
  }
}

void PeerWorker::receive() {
  while (!stop_) {
    auto in = client_->recv(0);
    if (!in) return;
    const int64_t recv_ns = trace::on() ? trace::now_ns() : 0;
    try {
      if (in->truncated) {
        throw proto::DecodeError(proto::ErrorCode::too_large,
                                 fmt::format("more than {} frames", in->frames.size()));
      }
      auto m = proto::decode(in->frames, limits_);
      if (trace::on()) {
        const auto key = trace_key(m);
        trace::mark("r", key.first, key.second, recv_ns, host_, static_cast<int64_t>(in->bytes));
        trace::mark("d", key.first, key.second, trace::now_ns(), host_);
      }
      inbox_.deliver(host_, std::move(m));
    } catch (const proto::DecodeError& e) {
      inbox_.fail(host_, fmt::format("sent a malformed reply: {}", e.what()));
    }
  }
}

void PeerWorker::loop() {
  net::Poller poller;
  poller.add(client_->socket());
  const size_t wake = poller.add_fd(wake_fd_);
  while (!stop_) {
    flush();
    receive();
    poller.wait(kSliceMs);
    if (poller.ready(wake)) {
      uint64_t n = 0;
      (void)!::read(wake_fd_, &n, sizeof n);
    }
  }
}

}  // namespace pcmoe::party
