/*
 * DESIGN: config key table (reference §1.1).
 * The built-in configuration tree as constant data, apart from the logic that uses it: one
 * row per leaf with its path, type, default (JSON text), rule and bounds, enum values,
 * updatable flag, description, error code and message; built-ins may also name a message for
 * an absent key and a bool key that gates their rules (warm storage). Row order is the
 * reference's validation order (ai: provider, analysis, planning; capture; storage;
 * interface; dev; infrastructure), which config_schema.c keeps as the schema's order so
 * "first failure" matches the reference. Also here: the messages of the top-level sections
 * and the list of paths updatable at runtime (the reference's 13, then the event store's
 * retention keys).
 * Pure data: no locks, no I/O, nothing mutable; any thread may read it. Nothing here is
 * checked at compile time: config_schema.c checks each row when it builds a schema (path
 * security, default passes its own rule, no duplicate, no leaf that is also a section), and
 * the unit tests check the updatable list against the rows' flags.
 */
#include "validation/config_keys.h"

#include <limits.h>
#include <stdint.h>
#include <string.h>

static const char *const providers[] = {"mock", "openai", "anthropic", "gemini", NULL};
static const char *const strategies[] = {"fast", "balanced", "thorough", NULL};
static const char *const overflow[] = {"drop_oldest", "drop_newest", "block", NULL};
static const char *const compressions[] = {"none", "gzip", "zstd", NULL};
static const char *const pool_strategies[] = {"lifo", "fifo", NULL};
static const char *const limiter_backends[] = {"memory", "redis", NULL};
static const char *const warm_backends[] = {"sqlite", "postgres", NULL};
static const char *const limiter_policies[] = {"local", "fail_open", "fail_closed", NULL};

/* K: one row. KM: a row with its own message for an absent key. KW: a warm-storage row, whose
 * rules apply only while storage.warm.enable is true. */
#define K(path, type, def, rule, lo, hi, en, upd, desc, code, msg)                                 \
    {                                                                                              \
        {path, FDN_CONFIG_##type, def, FDN_CONFIG_RULE_##rule, lo, hi, en, upd, desc, code, msg},  \
            NULL, NULL                                                                             \
    }
#define KM(path, type, def, rule, lo, hi, en, upd, desc, code, msg, missing)                       \
    {                                                                                              \
        {path, FDN_CONFIG_##type, def, FDN_CONFIG_RULE_##rule, lo, hi, en, upd, desc, code, msg},  \
            missing, NULL                                                                          \
    }
#define KW(path, type, def, rule, en, desc, code, msg)                                             \
    {                                                                                              \
        {path, FDN_CONFIG_##type, def, FDN_CONFIG_RULE_##rule, 0, 0, en, false, desc, code, msg},  \
            "Invalid warm storage configuration", "storage.warm.enable"                            \
    }

/* KT: a row of the telemetry section, with a rule of config_telemetry.h (not updatable: a
 * histogram's layout is fixed once its first series exists). */
#define TMC "Invalid telemetry configuration"
#define KT(path, type, def, rule, desc)                                                            \
    {                                                                                              \
        {path, FDN_CONFIG_##type, def, rule, 0, 0, NULL, false, desc, S1001, TMC}, NULL, NULL      \
    }

/* Upper bounds of POSITIVE / NON_NEGATIVE keys are the bounds of the component the value goes
 * to (fdn__cfg_entry_t.bounded): the runtime ignores a component's refusal, so a value past
 * them would validate and then be dropped silently. MS_MAX: a duration in ms held as ns with
 * room, INT64_MAX / 10^6 / 4 (fdn_limiter_set_cleanup_interval, fdn_breaker_opts_validate). */
#define MS_MAX 2305843009213.0
_Static_assert(INT64_MAX / 1000000 / 4 == 2305843009213LL, "MS_MAX");

#define S1001 FDN_ECONFIG_STRUCTURE
#define S1002 FDN_ECONFIG_INVALID
#define AN    "Invalid AI analysis configuration"
#define PL    "Invalid AI planning configuration"
#define RB    "Invalid ring buffer configuration"
#define PR    "Invalid processing configuration"
#define VM    "Invalid VM tracing configuration"
#define HOT   "Invalid hot storage configuration"
#define WARM  "Invalid warm storage configuration"
#define IFC   "Invalid interface configuration"
#define DEV   "Invalid development configuration"
#define RL    "Invalid rate limiting configuration"
#define CB    "Invalid circuit breaker configuration"
#define REG   "Invalid registry configuration"
#define CBD   "Invalid circuit breaker default configuration"
#define CP    "Invalid connection pool configuration"
#define CPD   "Invalid connection pool default configuration"

const fdn__cfg_builtin_t fdn__cfg_builtins[] = {
    KM("ai.provider", ENUM, "\"mock\"", ENUM, 0, 0, providers, false, "AI provider", S1002,
       "Invalid AI provider", "Invalid AI configuration"),
    KM("ai.api_key", STRING_OR_NULL, "null", NONE, 0, 0, NULL, false,
       "API key of the AI provider (never updatable)", S1001, "Invalid AI configuration", NULL),
    KM("ai.model", STRING, "\"gpt-4\"", NONE, 0, 0, NULL, false, "AI model name", S1001,
       "Invalid AI configuration", NULL),
    K("ai.analysis.max_file_size", INT, "1000000", POSITIVE, 0, 0, NULL, false,
      "Largest file analysed, bytes", S1001, AN),
    K("ai.analysis.timeout", INT, "30000", POSITIVE, 0, 0, NULL, false, "Analysis timeout, ms",
      S1001, AN),
    K("ai.analysis.cache_ttl", INT, "3600", POSITIVE, 0, 0, NULL, false,
      "Analysis cache TTL, seconds", S1001, AN),
    KM("ai.planning.performance_target", NUMBER, "0.01", NON_NEGATIVE, 0, 0, NULL, true,
       "Planning performance target", FDN_ECONFIG_CONSTRAINT,
       "Performance target must be a non-negative number", PL),
    KM("ai.planning.sampling_rate", NUMBER, "1.0", RANGE, 0, 1, NULL, true,
       "Fraction of operations sampled, [0, 1]", FDN_ECONFIG_RANGE,
       "Sampling rate must be between 0 and 1", PL),
    KM("ai.planning.default_strategy", ENUM, "\"balanced\"", ENUM, 0, 0, strategies, false,
       "Default planning strategy", S1002, "Invalid planning strategy", PL),
    K("capture.ring_buffer.size", INT, "1024", POSITIVE, 0, 0, NULL, false, "Ring buffer size",
      S1001, RB),
    K("capture.ring_buffer.max_events", INT, "1000", POSITIVE, 0, 0, NULL, false,
      "Ring buffer event capacity", S1001, RB),
    KM("capture.ring_buffer.overflow_strategy", ENUM, "\"drop_oldest\"", ENUM, 0, 0, overflow,
       false, "What a full ring buffer does", S1002, "Invalid overflow strategy", RB),
    KM("capture.ring_buffer.num_buffers", ANY, "\"schedulers\"", NONE, 0, 0, NULL, false,
       "Number of buffers: \"schedulers\" or an int (not validated)", S1001, RB, NULL),
    K("capture.processing.batch_size", INT, "100", POSITIVE, 0, 0, NULL, true,
      "Events processed per batch", S1001, PR),
    K("capture.processing.flush_interval", INT, "50", POSITIVE, 0, 0, NULL, true,
      "Flush interval, ms", S1001, PR),
    K("capture.processing.max_queue_size", INT, "1000", POSITIVE, 0, 0, NULL, false,
      "Processing queue bound", S1001, PR),
    K("capture.vm_tracing.enable_spawn_trace", BOOL, "true", NONE, 0, 0, NULL, false,
      "Trace spawns", S1001, VM),
    K("capture.vm_tracing.enable_exit_trace", BOOL, "true", NONE, 0, 0, NULL, false, "Trace exits",
      S1001, VM),
    K("capture.vm_tracing.enable_message_trace", BOOL, "false", NONE, 0, 0, NULL, false,
      "Trace messages", S1001, VM),
    K("capture.vm_tracing.trace_children", BOOL, "true", NONE, 0, 0, NULL, false, "Trace children",
      S1001, VM),
    K("storage.hot.max_events", INT, "100000", POSITIVE, 0, 0, NULL, true,
      "Event store memory tier: most events held in memory (older ones stay on disk)", S1001, HOT),
    K("storage.hot.max_age_seconds", INT, "3600", POSITIVE, 0, 0, NULL, true,
      "Event store memory tier: oldest event held in memory, seconds (older ones stay on disk)",
      S1001, HOT),
    K("storage.hot.prune_interval", INT, "60000", POSITIVE, 0, 0, NULL, true,
      "Event store: retention period of both tiers, ms", S1001, HOT),
    K("storage.hot.max_types", INT, "10000", POSITIVE, 0, 0, NULL, true,
      "Event store: most distinct event types held (a new type past it: 503)", S1001, HOT),
    K("storage.warm.enable", BOOL, "false", NONE, 0, 0, NULL, false,
      "Events are on disk (SQLite under storage.warm.path); true whenever the runtime has a "
      "data directory",
      S1001, WARM),
    K("storage.warm.retention.max_events", INT, "0", RANGE, 0, 9007199254740992.0, NULL, true,
      "Event store durable tier: most events kept on disk (0 = keep all)", S1001, WARM),
    K("storage.warm.retention.max_age_seconds", INT, "0", RANGE, 0, 9223372036.0, NULL, true,
      "Event store durable tier: oldest event kept on disk, seconds (0 = keep all)", S1001, WARM),
    KW("storage.warm.path", STRING, "\"./foundation_data\"", NONE, NULL,
       "Warm storage directory (checked only when enabled)", S1001, WARM),
    KW("storage.warm.max_size_mb", INT, "100", POSITIVE, NULL,
       "Warm storage size bound, MB (checked only when enabled)", S1001, WARM),
    KW("storage.warm.compression", ENUM, "\"zstd\"", ENUM, compressions,
       "Warm storage compression (checked only when enabled)", S1002, "Invalid compression type"),
    K("storage.warm.backend", ENUM, "\"sqlite\"", ENUM, 0, 0, warm_backends, false,
      "Event store durable tier: sqlite (a local file, with storage.warm.enable) or postgres "
      "(shared by many processes)",
      S1002, WARM),
    K("storage.warm.postgres.url", STRING, "\"\"", NONE, 0, 0, NULL, false,
      "PostgreSQL of the postgres backend: a libpq URI (postgresql://user@host:port/db) or "
      "key=value string",
      S1001, WARM),
    K("storage.warm.postgres.pool_size", INT, "4", RANGE, 1, 256, NULL, false,
      "Read connections to PostgreSQL, 1..256 (plus one writer and one listener)", S1001, WARM),
    K("storage.warm.postgres.schema", STRING, "\"fdn\"", NONE, 0, 0, NULL, false,
      "PostgreSQL schema of the event tables ([a-z_][a-z0-9_]*, not pg_*, at most 48 chars)", S1001,
      WARM),
    K("storage.warm.postgres.batch_max", INT, "1000", RANGE, 1, 65536, NULL, false,
      "Most events per append transaction, 1..65536", S1001, WARM),
    K("storage.warm.postgres.flush_interval_ms", INT, "0", RANGE, 0, 10000, NULL, false,
      "Writer's wait for a fuller batch, ms (0: commit as soon as the previous one ends)", S1001,
      WARM),
    K("storage.warm.postgres.command_timeout_ms", INT, "5000", RANGE, 1, 600000, NULL, false,
      "Bound of one call on PostgreSQL (an append with its retries, a read), ms", S1001, WARM),
    K("storage.warm.postgres.connect_timeout_ms", INT, "5000", RANGE, 1, 600000, NULL, false,
      "Bound of each connection the open makes (the writer's, with the schema's migration, and "
      "the pool's first), ms",
      S1001, WARM),
    K("storage.warm.postgres.stop_timeout_ms", INT, "5000", RANGE, 1, 86400000, NULL, false,
      "Bound of the event store's stop while its writer commits: past it the writer's call is "
      "cut and what it has not committed goes to the spool (or fails), ms",
      S1001, WARM),
    K("storage.warm.postgres.spool_path", STRING, "\"\"", NONE, 0, 0, NULL, false,
      "Local SQLite spool for batches while PostgreSQL is away (\"\": no spool, stores fail)",
      S1001, WARM),
    K("storage.warm.postgres.spool_max_bytes", INT, "67108864", RANGE, 4096, 1e15, NULL, false,
      "Most bytes the spool holds (a batch past it: 503)", S1001, WARM),
    K("storage.cold.enable", BOOL, "false", FALSE_ONLY, 0, 0, NULL, false,
      "Cold storage switch (must be false)", S1001, "Invalid cold storage configuration"),
    K("interface.query_timeout", INT, "10000", POSITIVE, 0, 0, NULL, true, "Query timeout, ms",
      S1001, IFC),
    /* bounded by the event store's cap, 32 bits (fdn_events_set_max_results) */
    K("interface.max_results", INT, "1000", POSITIVE, 0, 4294967295.0, NULL, true,
      "Cap on query results", S1001, IFC),
    K("interface.enable_streaming", BOOL, "true", NONE, 0, 0, NULL, false, "Streaming switch",
      S1001, IFC),
    K("dev.debug_mode", BOOL, "false", NONE, 0, 0, NULL, true, "Debug mode", S1001, DEV),
    K("dev.verbose_logging", BOOL, "false", NONE, 0, 0, NULL, true, "Verbose logging", S1001, DEV),
    K("dev.performance_monitoring", BOOL, "true", NONE, 0, 0, NULL, true, "Performance monitoring",
      S1001, DEV),
    K("infrastructure.rate_limiting.default_rules", OBJECT,
      "{\"api_calls\":{\"scale\":60000,\"limit\":100},"
      "\"db_queries\":{\"scale\":60000,\"limit\":500},"
      "\"file_operations\":{\"scale\":1000,\"limit\":10}}",
      RATE_RULES, 0, 0, NULL, false, "Rate-limit rules: name -> {scale ms, limit}", S1001, RL),
    K("infrastructure.rate_limiting.enabled", BOOL, "true", NONE, 0, 0, NULL, true,
      "Rate limiting layer switch", S1001, RL),
    K("infrastructure.rate_limiting.cleanup_interval", INT, "300000", POSITIVE, 0, MS_MAX, NULL,
      true, "Rate-limit bucket cleanup period, ms", S1001, RL),
    K("infrastructure.rate_limiting.backend", ENUM, "\"memory\"", ENUM, 0, 0, limiter_backends,
      false, "Where limiter state lives: memory (this process) or redis (shared)", S1002, RL),
    K("infrastructure.rate_limiting.redis.url", STRING, "\"redis://127.0.0.1:6379\"", NONE, 0, 0,
      NULL, false, "Redis server of the redis backend: redis://[[user]:password@]host[:port][/db]",
      S1001, RL),
    K("infrastructure.rate_limiting.redis.pool_size", INT, "4", RANGE, 1, 1024, NULL, false,
      "Connections to Redis, 1..1024", S1001, RL),
    K("infrastructure.rate_limiting.redis.connect_timeout_ms", INT, "1000", RANGE, 1, 60000, NULL,
      false, "Redis connect timeout, ms", S1001, RL),
    K("infrastructure.rate_limiting.redis.command_timeout_ms", INT, "250", RANGE, 1, 60000, NULL,
      false, "Bound on a check's wait for Redis, ms", S1001, RL),
    K("infrastructure.rate_limiting.redis.key_prefix", STRING, "\"fdn:rl:\"", NONE, 0, 0, NULL,
      false, "Prefix of every limiter key in Redis", S1001, RL),
    K("infrastructure.rate_limiting.redis.failure_policy", ENUM, "\"local\"", ENUM, 0, 0,
      limiter_policies, false, "Answer while Redis is away: local, fail_open or fail_closed", S1002,
      RL),
    K("infrastructure.rate_limiting.redis.fleet_size", INT, "1", POSITIVE, 0, 0, NULL, false,
      "Processes sharing the limits (the local policy divides limits by it)", S1001, RL),
    K("infrastructure.rate_limiting.redis.pipeline_max", INT, "32", RANGE, 1, 256, NULL, false,
      "Most checks sent together in one write (a connection carries up to 4 such pipelines at "
      "once)",
      S1001, RL),
    K("infrastructure.rate_limiting.max_keys", INT, "1048576", RANGE, 1, 4294967295.0, NULL, false,
      "Most live limiter keys in this process (the in-memory table's bound; new keys past "
      "it: 503 until cells expire)",
      S1001, RL),
    K("infrastructure.rate_limiting.max_keys_per_identity", INT, "65536", RANGE, 0, 4294967295.0,
      NULL, false,
      "Most live limiter keys of one identity (a check's `identity`; 0 = no quota); a new key "
      "past it: 429",
      S1001, RL),
    K("infrastructure.registry.lease_ttl_ms", INT, "10000", RANGE, 1000, 86400000, NULL, false,
      "Lease TTL of this process's entries in the shared registry on etcd, ms (1000..86400000, "
      "rounded up to whole seconds)",
      S1001, REG),
    K("infrastructure.registry.request_timeout_ms", INT, "2000", RANGE, 1, 600000, NULL, false,
      "Bound on every call to etcd by the shared registry and the config follower, connect "
      "included, ms (1..600000)",
      S1001, REG),
    K("infrastructure.circuit_breaker.default_config.failure_threshold", INT, "5", POSITIVE, 0,
      1000000, NULL, false, "Breaker default failure threshold", S1001, CBD),
    K("infrastructure.circuit_breaker.default_config.recovery_time", INT, "30000", POSITIVE, 0,
      MS_MAX, NULL, false, "Breaker default recovery time, ms", S1001, CBD),
    K("infrastructure.circuit_breaker.default_config.call_timeout", INT, "5000", POSITIVE, 0,
      MS_MAX, NULL, false, "Breaker default call timeout, ms", S1001, CBD),
    K("infrastructure.circuit_breaker.breakers", OBJECT, "{}", BREAKERS, 0, 0, NULL, false,
      "Named breakers made at start: name -> options (fdn_breaker_opts_parse)", S1001, CB),
    K("infrastructure.circuit_breaker.enabled", BOOL, "true", NONE, 0, 0, NULL, true,
      "Circuit breaker layer switch", S1001, CB),
    K("infrastructure.circuit_breaker.max_breakers", INT, "10000", RANGE, 1, 1000000, NULL, false,
      "Most distinct breaker names in this process, removed ones included (a new name past "
      "it, as over PUT /v1/breakers/{name}: 503)",
      S1001, CB),
    K("infrastructure.connection_pool.default_config.size", INT, "10", POSITIVE, 0, INT_MAX, NULL,
      false, "Pool default size", S1001, CPD),
    K("infrastructure.connection_pool.default_config.max_overflow", INT, "5", NON_NEGATIVE, 0,
      INT_MAX, NULL, false, "Pool default overflow", S1001, CPD),
    K("infrastructure.connection_pool.default_config.strategy", ENUM, "\"lifo\"", ENUM, 0, 0,
      pool_strategies, false, "Pool default checkout order", S1001, CPD),
    K("infrastructure.connection_pool.enabled", BOOL, "true", NONE, 0, 0, NULL, true,
      "Connection pool layer switch", S1001, CP),
    KT("telemetry.buckets", OBJECT, "{}", FDN__CFG_RULE_TM_BUCKETS,
       "Histogram bucket layouts by exported family name: name -> [le, ...] (seconds for "
       "*_seconds), applied at start"),
    KT("telemetry.summaries", ANY, "[]", FDN__CFG_RULE_TM_SUMMARIES,
       "Histograms also exported as a summary (quantiles 0.5, 0.9, 0.99, 0.999 since start), "
       "by exported family name"),
};

const size_t fdn__cfg_builtin_count = sizeof(fdn__cfg_builtins) / sizeof(fdn__cfg_builtins[0]);

const char *fdn__cfg_section_message(const char *top, size_t len)
{
    static const struct {
        const char *name;
        const char *msg;
    } m[] = {
        {"ai", "Invalid AI configuration"},
        {"capture", "Invalid capture configuration"},
        {"storage", "Invalid storage configuration"},
        {"interface", "Invalid interface configuration"},
        {"dev", "Invalid development configuration"},
        {"infrastructure", "Invalid infrastructure configuration"},
        {"telemetry", "Invalid telemetry configuration"},
    };
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
        if (strlen(m[i].name) == len && memcmp(m[i].name, top, len) == 0)
            return m[i].msg;
    }
    return "Invalid configuration";
}

const char *const fdn__cfg_updatable_paths[] = {
    "ai.planning.sampling_rate",
    "ai.planning.performance_target",
    "capture.processing.batch_size",
    "capture.processing.flush_interval",
    "interface.query_timeout",
    "interface.max_results",
    "dev.debug_mode",
    "dev.verbose_logging",
    "dev.performance_monitoring",
    "infrastructure.rate_limiting.enabled",
    "infrastructure.circuit_breaker.enabled",
    "infrastructure.connection_pool.enabled",
    "infrastructure.rate_limiting.cleanup_interval",
    /* the event store's two tiers (issue 21: retention changeable at run time) */
    "storage.hot.max_events",
    "storage.hot.max_age_seconds",
    "storage.hot.prune_interval",
    "storage.hot.max_types",
    "storage.warm.retention.max_events",
    "storage.warm.retention.max_age_seconds",
    NULL,
};
const size_t fdn__cfg_updatable_count = 19;
