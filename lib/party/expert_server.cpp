// The party's expert service: its I/O, staging, compute and completion threads (see expert_server.h).
#include "party/expert_server.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "common/error.h"
#include "common/log.h"
#include "common/trace.h"
#include "net/poll.h"
#include "net/rpc.h"
#include "party/trace_keys.h"

namespace pcmoe::party {
namespace {

// Requests decoded and waiting to be staged or launched, at most: a peer that floods the service waits
// in ZeroMQ's queues (bounded by their high-water marks), not in this process's memory.
constexpr size_t kMaxQueued = 16;
// Requests launched on the device and not yet completed at most: the compute thread launches the
// next request while the completion thread waits for this one's copies (each holds its rows on
// the device and its results in pinned memory until completed).
constexpr size_t kMaxLaunched = 4;

}  // namespace

ExpertServer::ExpertServer(zmq::context_t& ctx, const net::ServerOptions& options,
                           const proto::Limits& limits)
    : server_(std::make_unique<net::Server>(ctx, options)), endpoint_(server_->endpoint()), limits_(limits) {
  wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw TransportError(std::string("eventfd failed: ") + std::strerror(errno));
}

ExpertServer::~ExpertServer() {
  stop();
  ::close(wake_fd_);
}

void ExpertServer::start() {
  if (thread_.joinable()) return;
  stage_ = std::thread([this] { stage_loop(); });
  compute_ = std::thread([this] { compute_loop(); });
  complete_ = std::thread([this] { complete_loop(); });
  thread_ = std::thread([this] { loop(); });
}

void ExpertServer::install(ExpertHost* host) { host_.store(host); }

void ExpertServer::set_parties(const std::map<std::string, std::string>& key_to_id) {
  std::vector<std::string> keys;
  {
    std::lock_guard<std::mutex> lock(keys_mu_);
    key_to_id_ = key_to_id;
    for (const auto& [k, id] : key_to_id_) {
      if (!k.empty()) keys.push_back(k);
    }
  }
  if (server_ && server_->curve_enabled() && !keys.empty()) server_->set_allowed_client_keys(keys);
}

void ExpertServer::stop() {
  stop_.store(true);
  stage_cv_.notify_all();
  work_cv_.notify_all();
  launched_cv_.notify_all();
  if (stage_.joinable()) stage_.join();
  if (compute_.joinable()) compute_.join();  // then the completion thread drains the launched requests
  if (complete_.joinable()) complete_.join();
  if (thread_.joinable()) thread_.join();
}

void ExpertServer::take(net::Request& req, std::chrono::steady_clock::time_point received) {
  ExpertHost* host = host_.load();
  if (!host) {
    // Joined but still building its trainer (the federation may already be training): `busy`
    // makes the requester ask again, and the request id lets it match this answer at once.
    proto::ErrorMsg e;
    e.code = static_cast<uint16_t>(proto::ErrorCode::busy);
    e.reason = "this party is still starting (its expert host is not ready yet); retry";
    e.in_reply_to = static_cast<uint16_t>(proto::type_of(*req.message));
    if (const auto* f = std::get_if<proto::ExpertForward>(&*req.message)) e.request_id = f->request_id;
    if (const auto* b = std::get_if<proto::ExpertBackward>(&*req.message)) e.request_id = b->request_id;
    net::reply(*server_, req.peer, e);
    return;
  }
  std::string sender;
  if (!req.curve_key.empty()) {
    std::lock_guard<std::mutex> lock(keys_mu_);
    auto it = key_to_id_.find(req.curve_key);
    sender = it == key_to_id_.end() ? "?unknown-key" : it->second;
  }
  Work w{std::move(req.peer), std::move(sender), {std::move(*req.message), std::nullopt, 0}, received};
  std::lock_guard<std::mutex> lock(work_mu_);
  incoming_.push_back(std::move(w));
  stage_cv_.notify_one();
}

size_t ExpertServer::queued() {
  std::lock_guard<std::mutex> lock(work_mu_);
  return incoming_.size() + work_.size();
}

void ExpertServer::stage_loop() {
  while (true) {
    Work w;
    {
      std::unique_lock<std::mutex> lock(work_mu_);
      stage_cv_.wait(lock, [this] { return stop_.load() || !incoming_.empty(); });
      if (stop_.load()) return;
      w = std::move(incoming_.front());
      incoming_.pop_front();
    }
    // Staging (a copy into pinned memory) off the I/O thread: it receives and decodes the next
    // request meanwhile.
    const auto key = trace_key(w.request.message);
    w.request = host_.load()->prepare(std::move(w.request.message));
    if (trace::on()) trace::mark("hs", key.first, key.second, trace::now_ns(), -1, -1, trace_peer(w.peer));
    std::lock_guard<std::mutex> lock(work_mu_);
    work_.push_back(std::move(w));
    work_cv_.notify_one();
  }
}

void ExpertServer::send_replies() {
  std::deque<std::pair<std::string, proto::Message>> out;
  {
    std::lock_guard<std::mutex> lock(work_mu_);
    out.swap(replies_);
  }
  for (auto& [peer, reply] : out) {
    ExpertHost::stamp_replied(reply);
    net::reply(*server_, peer, reply);
    if (trace::on()) {
      const auto key = trace_key(reply);
      trace::mark("hx", key.first, key.second, trace::now_ns(), -1, -1, trace_peer(peer));
    }
  }
}

void ExpertServer::compute_loop() {
  while (true) {
    Work w;
    {
      std::unique_lock<std::mutex> lock(work_mu_);
      work_cv_.wait(lock,
                    [this] { return stop_.load() || (!work_.empty() && launched_.size() < kMaxLaunched); });
      if (stop_.load()) return;
      w = std::move(work_.front());
      work_.pop_front();
    }
    const auto key = trace_key(w.request.message);
    const int64_t launch_ns = trace::on() ? trace::now_ns() : 0;
    auto launched = host_.load()->launch(w.sender, w.request, w.received, w.peer);
    if (trace::on()) {
      trace::mark("hl0", key.first, key.second, launch_ns, -1, -1, trace_peer(w.peer));
      trace::mark("hl1", key.first, key.second, trace::now_ns(), -1, -1, trace_peer(w.peer));
    }
    {
      std::lock_guard<std::mutex> lock(work_mu_);
      launched_.emplace_back(std::move(w.peer), std::move(launched));
    }
    launched_cv_.notify_one();
  }
}

void ExpertServer::complete_loop() {
  while (true) {
    std::pair<std::string, std::unique_ptr<ExpertHost::Launched>> next;
    {
      std::unique_lock<std::mutex> lock(work_mu_);
      launched_cv_.wait(lock, [this] { return stop_.load() || !launched_.empty(); });
      // Stopping: what was launched is still completed (the host counts launched requests, and a
      // step_end waits for them), its replies are not sent.
      if (launched_.empty()) return;
      next = std::move(launched_.front());
      launched_.pop_front();
    }
    work_cv_.notify_one();  // room for another launch
    const int64_t popped_ns = trace::on() ? trace::now_ns() : 0;
    proto::Message reply = host_.load()->complete(std::move(next.second));
    if (trace::on()) {
      const auto key = trace_key(reply);
      trace::mark("hc0", key.first, key.second, popped_ns, -1, -1, trace_peer(next.first));
      trace::mark("hc1", key.first, key.second, trace::now_ns(), -1, -1, trace_peer(next.first));
    }
    {
      std::lock_guard<std::mutex> lock(work_mu_);
      replies_.emplace_back(std::move(next.first), std::move(reply));
    }
    const uint64_t one = 1;
    (void)!::write(wake_fd_, &one, sizeof one);
  }
}

void ExpertServer::trace_received(const net::Request& req, int64_t pick_ns) {
  const auto key = trace_key(*req.message);
  if (key.first == 0) return;
  std::string tag = trace_peer(req.peer);
  if (const auto* f = std::get_if<proto::ExpertForward>(&*req.message)) {
    tag += "|" + f->requester;
    trace::mark("hr", key.first, key.second, pick_ns, static_cast<int64_t>(f->layer), -1, tag);
  } else {
    trace::mark("hr", key.first, key.second, pick_ns, -1, -1, tag);
  }
  trace::mark("hd", key.first, key.second, trace::now_ns(), static_cast<int64_t>(req.bytes), -1, tag);
}

void ExpertServer::loop() {
  using Clock = std::chrono::steady_clock;
  auto last_stats = Clock::now();
  int bad_logged = 0;
  auto bad_window = Clock::now();
  net::Poller poller, replies_only;  // the latter while the compute queue is full
  poller.add(server_->socket());
  const size_t wake = poller.add_fd(wake_fd_);
  replies_only.add_fd(wake_fd_);
  while (!stop_.load()) {
    const bool full = queued() >= kMaxQueued;
    (full ? replies_only : poller).wait(100);
    if (full ? replies_only.ready(0) : poller.ready(wake)) {
      uint64_t n = 0;
      (void)!::read(wake_fd_, &n, sizeof n);
    }
    send_replies();
    if (Clock::now() - last_stats > std::chrono::seconds(10)) {
      last_stats = Clock::now();
      PCMOE_INFO("server.stats")
          .kv("requests", requests_.load())
          .kv("bad_messages", bad_.load())
          .kv("bytes_received", server_->bytes_received())
          .kv("bytes_sent", server_->bytes_sent());
    }
    while (!stop_.load() && queued() < kMaxQueued) {  // beyond: left in the socket (back-pressure)
      std::optional<net::Request> req;
      const int64_t pick_ns = trace::on() ? trace::now_ns() : 0;
      try {
        req = net::recv_request(*server_, 0, limits_);
      } catch (const std::exception& e) {
        PCMOE_ERROR("server.recv_failed").kv("error", e.what());
        break;
      }
      if (!req) break;
      const auto received = Clock::now();
      requests_++;
      if (trace::on() && req->message) trace_received(*req, pick_ns);
      if (!req->error) {
        take(*req, received);
        send_replies();  // a reply ready meanwhile does not wait for the staging of more requests
        continue;
      }
      bad_++;
      if (Clock::now() - bad_window > std::chrono::seconds(1)) {
        bad_window = Clock::now();
        bad_logged = 0;
      }
      if (bad_logged++ < 10) {
        PCMOE_WARN("server.bad_message")
            .kv("code", std::string(proto::error_code_name(req->error->code)))
            .kv("reason", req->error->what())
            .kv("bytes", static_cast<uint64_t>(req->bytes));
      }
      net::reply_error(*server_, *req);
    }
  }
}

}  // namespace pcmoe::party
