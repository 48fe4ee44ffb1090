// Data parallel start-up: every rank takes rank 0's options, model and state (rank 0 alone reads
// the run folder and the checkpoints).
#include <type_traits>
#include <vector>

#include "train/session_impl.h"

namespace anetrain {

namespace {

void broadcast_string(Comm& comm, std::string& s, const std::string& what) {
  uint64_t n = s.size();
  comm.broadcast(&n, sizeof n, what);
  s.resize(n);
  comm.broadcast(s.data(), n, what);
}

}  // namespace

void TrainSession::Impl::share_options() {
  // Rank 0's options (from its command line or its run.json) are the run's; the testing hooks are
  // not part of run.json, so each rank keeps its own (the same command line gives the same).
  // --stop-at belongs to this invocation, not to run.json, so it travels beside the options.
  std::string j;
  if (lead()) {
    nlohmann::json all = o_.to_json();
    all["stop_at"] = o_.stop_at;
    j = all.dump();
  }
  broadcast_string(*comm_, j, "the run's options");
  if (lead()) return;
  TrainOptions mine = std::move(o_);
  const nlohmann::json all = nlohmann::json::parse(j);
  o_ = TrainOptions::from_json(all);
  o_.stop_at = all.at("stop_at").get<int64_t>();
  o_.inject_nan = mine.inject_nan;
  o_.inject_overflow = mine.inject_overflow;
}

void TrainSession::Impl::share_model() {
  std::string cfg = lead() ? config_to_json(model_->cfg).dump() : std::string();
  broadcast_string(*comm_, cfg, "the model's configuration");
  if (!lead()) model_ = std::make_unique<Model>(config_from_json(nlohmann::json::parse(cfg), "rank 0's model"));
}

void TrainSession::Impl::share_state() {
  // Ranks are copies of one program on one kind of machine, so the state goes as raw bytes.
  static_assert(std::is_trivially_copyable_v<TrainState>);
  Model& m = *model_;
  comm_->broadcast(m.params.data(), m.params.size() * sizeof(float), "the initial weights");
  m.touch();
  if (resuming_) {
    comm_->broadcast(opt_->m1().data(), opt_->m1().size() * sizeof(float), "the optimizer state");
    comm_->broadcast(opt_->m2().data(), opt_->m2().size() * sizeof(float), "the optimizer state");
    int64_t t = opt_->steps_taken();
    comm_->broadcast(&t, sizeof t, "the optimizer state");
    opt_->set_steps_taken(t);
    comm_->broadcast(&st_, sizeof st_, "the training state");
  }
}

}  // namespace anetrain
