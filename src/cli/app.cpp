// Every subcommand on one CLI11 app: what `anetrain` parses, and what fuzz/fuzz_cli.cpp parses
// without running anything (every flag's checks run at parse time, so they are fuzzed too).
#include "cli/commands.h"

namespace anetrain {

void add_all_commands(CLI::App& app, Command& run) {
  app.require_subcommand(1);
  app.set_version_flag("--version", "anetrain 0.1.0");
  add_train_command(app, run);
  add_info_command(app, run);
  add_grad_command(app, run);
  add_fit_batch_command(app, run);
  add_inspect_command(app, run);
  add_export_command(app, run);
  add_tokenizer_command(app, run);
  add_prepare_command(app, run);
  add_bench_command(app, run);
  add_convert_command(app, run);
  add_merge_command(app, run);
  add_import_seed_command(app, run);
  add_generate_command(app, run);
  add_eval_command(app, run);
#if defined(ANETRAIN_HAVE_ANE_SIM) || defined(ANETRAIN_HAVE_ANE)  // the ane backends' tools, built with them
  add_mil_command(app, run);
  add_ane_command(app, run);
#endif
  add_metrics_command(app, run);
  add_dashboard_command(app, run);
  add_tokenizer_train_command(app, run);  // keep last: joins `tokenizer`
}

}  // namespace anetrain
