#include "millrace/window/window_operator.h"

#include "millrace/window/keyed_windows.h"

namespace millrace {

std::unique_ptr<WindowOperator> WindowOperator::Create(const WindowSpec& spec,
                                                       const Schema& schema) {
  if (spec.type == WindowType::Session) return make_session_windows(spec, schema);
  return make_pane_windows(spec, schema);
}

}  // namespace millrace
