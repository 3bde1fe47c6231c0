// `--input` values of run and backfill: a plain URI for a spec with one source,
// or SOURCE=URI once per source.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "millrace/core/status.h"
#include "millrace/stream/spec.h"

namespace millrace::cli {

Status split_inputs(const PipelineSpec& spec, const std::vector<std::string>& values,
                    std::string* single, std::vector<std::pair<std::string, std::string>>* named);

}  // namespace millrace::cli
