/**
 * The vars and secrets the worker gets in the workerd test pools (vitest.workers.config.ts
 * and the workers project of vitest.fuzz.config.ts). Limits are small so tests reach them.
 */
export const WORKER_TEST_BINDINGS = {
  JWT_SECRET: "workers-test-secret-0123456789abcdef",
  ADMIN_TOKEN: "workers-test-admin",
  PRESENCE_TTL_MS: "120000",
  POSITION_COALESCE_MS: "3000",
  DEV_MODE: "1",
  MAX_DEVICES_PER_USER: "3",
  MAX_FRIENDS: "20",
  MAX_PENDING_REQUESTS: "3",
  // Above the 14 frames of a fuzz session (hardening-fuzz.test.ts), so only hardening-storage.test.ts reaches it.
  MAX_BLOCKED: "20",
  RPC_TIMEOUT_MS: "1000",
  MAX_ERRORS_PER_WINDOW: "5",
  DCL_AUTH_TIMEOUT_MS: "1000",
  // Small, so that test/workers/hardening-budget.test.ts can measure the bound.
  CALL_BUDGET_PER_SECOND: "50",
  CALL_BUDGET_BURST: "100",
};
