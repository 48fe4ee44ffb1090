// Each subcommand registers its flags on the CLI11 app and returns the function to run.
#pragma once
#include <functional>

#include <CLI/CLI.hpp>

namespace anetrain {

using Command = std::function<int()>;

// Every subcommand below, on one app (cli/app.cpp).
void add_all_commands(CLI::App& app, Command& run);

void add_info_command(CLI::App& app, Command& run);
void add_grad_command(CLI::App& app, Command& run);
void add_fit_batch_command(CLI::App& app, Command& run);
void add_train_command(CLI::App& app, Command& run);
void add_inspect_command(CLI::App& app, Command& run);
void add_export_command(CLI::App& app, Command& run);
void add_tokenizer_command(CLI::App& app, Command& run);
void add_prepare_command(CLI::App& app, Command& run);
void add_bench_command(CLI::App& app, Command& run);
void add_generate_command(CLI::App& app, Command& run);
void add_eval_command(CLI::App& app, Command& run);
void add_tokenizer_train_command(CLI::App& app, Command& run);  // after add_tokenizer_command
void add_convert_command(CLI::App& app, Command& run);
void add_merge_command(CLI::App& app, Command& run);
void add_import_seed_command(CLI::App& app, Command& run);
void add_mil_command(CLI::App& app, Command& run);
void add_ane_command(CLI::App& app, Command& run);
void add_metrics_command(CLI::App& app, Command& run);
void add_dashboard_command(CLI::App& app, Command& run);
// `anetrain dashboard ... --train WORDS`: sets WORDS aside for the trainer, verbatim, and returns
// the argc CLI11 is to parse (through --train). main calls it before parsing.
int set_aside_trainer_words(int argc, char** argv);
void add_bench_mil_command(CLI::App* bench, Command& run);    // from add_bench_command
void add_bench_train_command(CLI::App* bench, Command& run);  // from add_bench_command
void add_bench_generate_command(CLI::App* bench, Command& run);  // from add_bench_command

}  // namespace anetrain
