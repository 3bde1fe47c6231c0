// Time: event time is integer milliseconds since the Unix epoch, everywhere.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "millrace/core/status.h"

namespace millrace {

using TimeMs = int64_t;

inline constexpr TimeMs kMinTime = std::numeric_limits<TimeMs>::min() / 4;
inline constexpr TimeMs kMaxTime = std::numeric_limits<TimeMs>::max() / 4;

// Parses a duration such as "500ms", "5s", "1m", "24h", "7d" or "1h30m" into
// milliseconds. A bare integer is milliseconds. Negative durations are errors.
Result<TimeMs> parse_duration_ms(std::string_view text);

// Formats a duration compactly ("5s", "1h30m", "250ms").
std::string format_duration(TimeMs ms);

// Parses an RFC 3339 timestamp ("2026-01-01T00:00:00Z", "...T12:00:00.250+02:00";
// a space may stand for the 'T') into epoch milliseconds. Fractions beyond
// milliseconds are truncated. nullopt when the text is not such a timestamp.
std::optional<TimeMs> parse_rfc3339_ms(std::string_view text);

// Formats epoch milliseconds as "YYYY-MM-DDTHH:MM:SS.mmmZ".
std::string format_rfc3339_ms(TimeMs ms);

// Days since 1970-01-01 of a proleptic Gregorian civil date, and back.
int64_t days_from_civil(int64_t y, unsigned m, unsigned d);
void civil_from_days(int64_t days, int64_t* y, unsigned* m, unsigned* d);

}  // namespace millrace
