/** Where the admin API is: a base URL, its token, and optionally how to fetch (the workerd tests pass the worker's). */
export interface AdminTarget {
  url: string;
  adminToken: string;
  fetch?: (url: string, init: RequestInit) => Promise<Response>;
}

/** One call to /v1/admin/<path> with a JSON body. */
export function admin(target: AdminTarget, method: string, path: string, body: unknown): Promise<Response>;
/** PUT /v1/admin/friendships {a, b}: 200 when done, 202 when the other side has not acknowledged yet. */
export function befriend(target: AdminTarget, a: string, b: string): Promise<Response>;
/** DELETE /v1/admin/friendships {a, b}. */
export function unfriend(target: AdminTarget, a: string, b: string): Promise<Response>;
