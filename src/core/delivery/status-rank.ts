/** What {@link foldByRank} needs of a status: its rank, and the payload's time of it. */
export interface RankedPoint {
  /** Higher ranks win; a record's status never moves to a lower one. */
  readonly rank: number;
  /** The time the report itself carries (not when it arrived), in milliseconds. */
  readonly timestampMs: number;
}

/**
 * The one rule for statuses that arrive late, twice or out of order: a higher rank replaces
 * the current status, a lower one changes nothing, and of two reports of the same rank the one
 * with the earlier payload timestamp is kept (when that state was first reached). Folding any
 * permutation of the same reports gives the same result.
 *
 * Returns `current` itself when `incoming` changes nothing.
 */
export function foldByRank<S extends RankedPoint>(current: S | undefined, incoming: S): S {
  return current === undefined || outranks(incoming, current) ? incoming : current;
}

/** Whether `incoming` replaces `current` under {@link foldByRank}'s rule. */
export function outranks(incoming: RankedPoint, current: RankedPoint): boolean {
  if (incoming.rank !== current.rank) return incoming.rank > current.rank;
  return incoming.timestampMs < current.timestampMs;
}
