/**
 * Cursor pagination: turns a "fetch one page" function into an async iterator over
 * every item of every page.
 *
 * @module
 */

/** One page of a cursor-paginated list. */
export interface Page<T> {
  /** The items of this page. */
  items: T[];
  /** The cursor of the next page; null or absent on the last page. */
  nextCursor?: string | null | undefined;
}

/**
 * Iterates over every item of every page, fetching a page only when the previous one
 * is used up. Stops on the last page, or when a page's cursor repeats (a server bug
 * that would otherwise loop forever).
 *
 * @param fetchPage - Fetches the page at `cursor` (`undefined`: the first one).
 */
export async function* paginate<T>(
  fetchPage: (cursor: string | undefined) => Promise<Page<T>>,
): AsyncGenerator<T, void, undefined> {
  let cursor: string | undefined;
  const seen = new Set<string>();
  for (;;) {
    const page = await fetchPage(cursor);
    yield* page.items;
    const next = page.nextCursor ?? undefined;
    if (next === undefined || next === "" || seen.has(next)) return;
    seen.add(next);
    cursor = next;
  }
}
