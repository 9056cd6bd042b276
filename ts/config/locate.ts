/**
 * Where an issue is in the file: the validator reports field paths
 * (`pools.api.backends[2].address`); for YAML and JSON files the parsed
 * document still knows every node's offset, so each issue also gets the line
 * and column of the value it is about (of the key, for an unknown key; of the
 * nearest enclosing node, for a missing one).
 */
import { isMap, isScalar, isSeq, type LineCounter, type Node, type Pair } from 'yaml';
import type { ConfigIssue } from '../errors.js';

/** The node a path leads to, or the deepest one on the way; `pair` when the last step was a map key. */
interface Found {
  node: Node | null;
  pair?: Pair;
  /** True when the whole path was found. */
  whole: boolean;
}

/** Follow `rest` (e.g. `api.backends[2].address`) from `node`. Names may contain dots, so the longest key that fits wins. */
function follow(node: Node | null, rest: string): Found {
  if (rest === '') return { node, whole: true };
  if (isSeq(node)) {
    const m = /^\[(\d+)\]\.?/.exec(rest);
    const item = m ? node.items[Number(m[1])] : undefined;
    if (!m || item === undefined) return { node, whole: false };
    return follow(item as Node, rest.slice(m[0].length));
  }
  if (isMap(node)) {
    let best: Pair | undefined;
    let bestKey = '';
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
      if (key === undefined || key.length <= bestKey.length || !rest.startsWith(key)) continue;
      const next = rest.charAt(key.length);
      if (next === '' || next === '.' || next === '[') {
        best = pair;
        bestKey = key;
      }
    }
    if (!best) return { node, whole: false };
    const after = rest.slice(bestKey.length).replace(/^\./, '');
    if (after === '') return { node: (best.value as Node | null) ?? (best.key as Node), pair: best, whole: true };
    const found = follow(best.value as Node | null, after);
    return found.node ? found : { node: best.key as Node, pair: best, whole: false };
  }
  return { node, whole: false };
}

/**
 * The issues with `line` and `col` added where the path leads to a node of `root`.
 * @param root  the document's contents (`doc.contents`)
 * @param lines the LineCounter the document was parsed with
 */
export function locateIssues(issues: readonly ConfigIssue[], root: Node | null, lines: LineCounter): ConfigIssue[] {
  return issues.map((issue) => {
    if (issue.line !== undefined) return issue;
    const path = issue.path === '(root)' ? '' : issue.path;
    const found = follow(root, path);
    // An unknown key is about the key itself, not its value.
    const target = found.whole && found.pair && issue.message.startsWith('unknown key') ? (found.pair.key as Node) : found.node;
    const offset = target?.range?.[0];
    if (offset === undefined) return issue;
    const { line, col } = lines.linePos(offset);
    return { ...issue, line, col };
  });
}
