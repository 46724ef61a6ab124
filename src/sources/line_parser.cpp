#include <algorithm>

#include "sources/source.hpp"

namespace rp::sources {

void LineParser::for_each_candidate(std::string_view lines,
                                    const std::function<void(std::size_t, std::size_t)>& keep) const {
    if (filter_) {
        filter_(lines, keep);
        return;
    }
    for (std::size_t pos = 0; pos < lines.size();) {
        const auto end = std::min(lines.find('\n', pos), lines.size());
        keep(pos, end);
        pos = end + 1;
    }
}

}  // namespace rp::sources
