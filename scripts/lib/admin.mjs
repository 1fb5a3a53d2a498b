// The admin API as the dev tools and tests call it: one request helper, and the
// befriend/unfriend every suite needs. No Node imports, so the workerd tests use it too.

/**
 * @typedef {{ url: string, adminToken: string, fetch?: (url: string, init: RequestInit) => Promise<Response> }} AdminTarget
 */

/**
 * One call to /v1/admin/<path> with a JSON body; the Response is returned as it is.
 * @param {AdminTarget} target
 * @param {string} method
 * @param {string} path
 * @param {unknown} body
 */
export function admin({ url, adminToken, fetch = globalThis.fetch }, method, path, body) {
  return fetch(`${url}/v1/admin${path}`, {
    method,
    headers: { Authorization: `Bearer ${adminToken}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** @param {AdminTarget} target @param {string} a @param {string} b */
export const befriend = (target, a, b) => admin(target, "PUT", "/friendships", { a, b });

/** @param {AdminTarget} target @param {string} a @param {string} b */
export const unfriend = (target, a, b) => admin(target, "DELETE", "/friendships", { a, b });
