/** Env variables whose values never appear in stored logs. */
const SECRET_ENV = /^(RAIBID_SECRET_.+|GITEA_TOKEN|GIT_TOKEN|RAIBID_API_TOKEN|GITEA_WEBHOOK_SECRET)$/;

/** Secret values from an environment: `RAIBID_SECRET_*` and the tokens raibid knows. */
export function secretValuesFromEnv(env: Record<string, string | undefined>): string[] {
  return Object.entries(env)
    .filter(([key, value]) => SECRET_ENV.test(key) && value !== undefined && value.length > 0)
    .map(([, value]) => value as string);
}

/**
 * A function replacing every occurrence of every secret with `***`. Longer secrets
 * are replaced first so one secret inside another is fully masked. Values shorter than
 * 3 characters are ignored: masking "1" would shred every log.
 */
export function createMasker(secrets: readonly string[]): (line: string) => string {
  const values = [...new Set(secrets.filter((s) => s.length >= 3))].sort((a, b) => b.length - a.length);
  if (values.length === 0) return (line) => line;
  return (line) => {
    let out = line;
    for (const value of values) {
      if (out.includes(value)) out = out.split(value).join('***');
    }
    return out;
  };
}
