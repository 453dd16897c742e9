#pragma once
/// Umbrella header for embedders. Library code includes only what it uses.
#include <automation/core/clock.hpp>
#include <automation/core/config.hpp>
#include <automation/core/error.hpp>
#include <automation/core/ids.hpp>
#include <automation/core/json.hpp>
#include <automation/core/logging.hpp>
#include <automation/core/time.hpp>
#include <automation/storage/memory_store.hpp>
#include <automation/storage/sqlite_store.hpp>
#include <automation/storage/store.hpp>
#include <automation/testing/fault_injecting_store.hpp>
#include <automation/testing/manual_clock.hpp>
#include <automation/version.hpp>
