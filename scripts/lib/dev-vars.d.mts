/** The repository's root directory, with a trailing slash. */
export const root: string;
/** .dev.vars (or .dev.vars.example) as name → value. */
export function readDevVars(): Record<string, string>;
