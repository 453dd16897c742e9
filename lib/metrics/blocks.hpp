#pragma once
// Storing encoded blocks: shared by MetricsAggregator::ingest and the file loaders, which build
// blocks straight from their rows.
#include <automation/core/clock.hpp>
#include <automation/core/time.hpp>
#include <automation/metrics/aggregator.hpp>
#include <automation/storage/store.hpp>

#include "metrics/codec.hpp"

namespace automation::metrics::detail {

// Stores `block` (its events from `source` starting at `source.first_row`) with its partials for
// `zone`. A block whose key is stored counts as duplicates; for a named source, a stored block at the
// same first row holding a prefix of this one is recognised (a file that grew) and only the rest stored.
Result<IngestResult> store_block(storage::Store& store, const TimeZone& zone, TimePoint now, const Block& block, const BatchSource& source);

}  // namespace automation::metrics::detail
