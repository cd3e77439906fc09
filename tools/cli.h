// The `refpay` command-line tool: shared declarations of its subcommands.
#ifndef REFPAY_TOOLS_CLI_H_
#define REFPAY_TOOLS_CLI_H_

#include <string>
#include <vector>

namespace refpay::cli {

// `refpay settle ...`: the batch job. Returns the process exit code.
int Settle(const std::vector<std::string>& args);

}  // namespace refpay::cli

#endif  // REFPAY_TOOLS_CLI_H_
