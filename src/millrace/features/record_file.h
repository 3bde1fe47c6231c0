// Reading a whole file of records against a Schema: CSV with a header row, or
// JSON lines (files named *.jsonl, *.ndjson or *.json). Batch values and
// reference tables are loaded with it. Every record comes out as an Event, so
// its values are typed exactly as a streamed event's would be.
//
// CSV cells: an empty cell is null (an error for a required column); int64
// and double cells are numbers, bool cells true/false/1/0, timestamp cells
// epoch milliseconds or RFC 3339. A bad record is an error naming the file,
// its line, the column and what was expected; columns not in the schema are
// ignored.
#pragma once

#include <functional>
#include <string>

#include "millrace/core/event.h"
#include "millrace/core/schema.h"
#include "millrace/core/status.h"

namespace millrace {

// Calls on_record for each record in file order; stops at the first error
// (of the file, or returned by on_record). `time_field` (or -1) names the
// column that sets Event::time.
Status read_record_file(const std::string& path, const Schema& schema, int time_field,
                        const std::function<Status(const Event&, int line)>& on_record);

}  // namespace millrace
