#include "millrace/window/window_operator.h"

#include "millrace/window/keyed_windows.h"

namespace millrace {

std::unique_ptr<WindowOperator> WindowOperator::Create(const WindowSpec& spec,
                                                       const Schema& schema) {
  if (spec.type == WindowType::Session) return make_session_windows(spec, schema);
  return make_pane_windows(spec, schema);
}

void WindowOperator::on_events(const WindowEvent* events, size_t n, WindowOutput* out) {
  for (size_t i = 0; i < n; ++i) {
    WindowOutput* o = events[i].out ? events[i].out : out;
    advance(events[i].watermark_before, o);
    if (events[i].event) on_event(*events[i].event, events[i].raw, events[i].watermark_before, o);
    advance(events[i].watermark_after, o);
  }
}

}  // namespace millrace
