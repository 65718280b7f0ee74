/**
 * The due index of the memory delivery store: key → due time (milliseconds), earliest first.
 * A binary min-heap with lazy deletion: `set` pushes a new node and `delete` only forgets the
 * key, so both are O(log n) / O(1); `pop` skips the nodes a later `set` or a `delete` made
 * stale. Ties go to the key set first. The heap is rebuilt from the live keys once stale nodes
 * outnumber them, so it never holds more than about twice as many nodes as keys.
 */
export interface DueIndex {
  /** Keys with a due time. */
  readonly size: number;
  /** @internal Nodes in the heap, stale ones included (for tests of the bound). */
  readonly nodes: number;
  /** The due time of `key`, `undefined` when it has none. */
  get(key: string): number | undefined;
  /** Gives `key` the due time `at`, replacing any earlier one. */
  set(key: string, at: number): void;
  /** Takes `key` out of the index. */
  delete(key: string): void;
  /**
   * Takes the key due earliest out of the index and returns it, if it is due at `now` (its
   * due time ≤ `now`); `undefined` when none is. O(log n), amortized over stale nodes.
   */
  pop(now: number): string | undefined;
  clear(): void;
}

interface Node {
  readonly at: number;
  /** Which `set` made it: the node is live while its key's latest `set` is this one. */
  readonly seq: number;
  readonly key: string;
}

/** Stale nodes tolerated beside the live ones before a rebuild. */
const SLACK = 64;

const before = (a: Node, b: Node): boolean => a.at < b.at || (a.at === b.at && a.seq < b.seq);

/** Creates an empty {@link DueIndex}. */
export function createDueIndex(): DueIndex {
  let heap: Node[] = [];
  /** Each key's live node. */
  const live = new Map<string, Node>();
  let seq = 0;

  const up = (i: number): void => {
    const node = heap[i] as Node;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = heap[parent] as Node;
      if (!before(node, p)) break;
      heap[i] = p;
      i = parent;
    }
    heap[i] = node;
  };

  const down = (i: number): void => {
    const node = heap[i] as Node;
    const n = heap.length;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      const child = right < n && before(heap[right] as Node, heap[left] as Node) ? right : left;
      const c = heap[child] as Node;
      if (!before(c, node)) break;
      heap[i] = c;
      i = child;
    }
    heap[i] = node;
  };

  const removeTop = (): void => {
    const last = heap.pop() as Node;
    if (heap.length === 0) return;
    heap[0] = last;
    down(0);
  };

  const rebuild = (): void => {
    heap = [...live.values()];
    for (let i = (heap.length >> 1) - 1; i >= 0; i--) down(i);
  };

  return {
    get size() {
      return live.size;
    },
    get nodes() {
      return heap.length;
    },
    get(key) {
      return live.get(key)?.at;
    },
    set(key, at) {
      const node: Node = { at, seq: seq++, key };
      live.set(key, node);
      heap.push(node);
      up(heap.length - 1);
      if (heap.length > 2 * live.size + SLACK) rebuild();
    },
    delete(key) {
      if (live.delete(key) && heap.length > 2 * live.size + SLACK) rebuild();
    },
    pop(now) {
      for (;;) {
        const top = heap[0];
        if (top === undefined) return undefined;
        if (live.get(top.key) !== top) {
          removeTop();
          continue;
        }
        if (top.at > now) return undefined;
        removeTop();
        live.delete(top.key);
        return top.key;
      }
    },
    clear() {
      heap = [];
      live.clear();
    },
  };
}
