// HubState::view: the copy of the hub's state that the HTTP thread renders (see hub_view.h).
#include "common/log.h"
#include "hub/hub_state.h"

namespace pcmoe::hub {

HubView HubState::view(TimePoint now) const {
  HubView v;
  v.status = status(now, true);
  for (const auto& p : registry_.parties()) {
    v.timing.push_back(
        {p.step_times.last_ms(), p.step_times.mean_ms(), p.joins, p.losses.train(), p.losses.eval()});
  }
  v.model_hash = model_hash_;
  v.msgs_in = msgs_in_;
  v.msgs_out = msgs_out_;
  v.bad_messages = bad_messages_;
  v.bytes_in = bytes_in_;
  v.bytes_out = bytes_out_;
  v.send_failures = send_failures_;
  v.published_at = log::utc_timestamp();
  return v;
}

}  // namespace pcmoe::hub
