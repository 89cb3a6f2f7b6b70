/** Which processes a command's names mean: `web`, `web:2`, `web*`, `all`. Pure. */

export interface NamedProcess {
  readonly name: string;
  readonly service: string;
}

function globToRegExp(glob: string): RegExp {
  return new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`);
}

/** Matched process names in the order of `processes`, and the names that matched nothing. */
export function resolveNames(names: readonly string[], processes: readonly NamedProcess[]): { matched: string[]; unknown: string[] } {
  const chosen = new Set<string>();
  const unknown: string[] = [];
  for (const name of names) {
    let hits: NamedProcess[];
    if (name === 'all') hits = [...processes];
    else if (/[*?]/.test(name)) {
      const re = globToRegExp(name);
      hits = processes.filter((p) => re.test(p.name) || re.test(p.service));
    } else hits = processes.filter((p) => p.name === name || p.service === name);
    if (hits.length === 0) unknown.push(name);
    for (const p of hits) chosen.add(p.name);
  }
  return { matched: processes.filter((p) => chosen.has(p.name)).map((p) => p.name), unknown };
}
