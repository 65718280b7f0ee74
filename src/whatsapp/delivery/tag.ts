/** The most characters Meta takes in `biz_opaque_callback_data`. */
export const MAX_CALLBACK_DATA = 512;

const TAGGED = /^rk:([A-Za-z0-9_-]{22})(?:\|([\s\S]*))?$/;

/**
 * The correlation tag of an idempotency key: the first 22 base64url characters (132 bits) of
 * its SHA-256, so the key can't be read back from what every app on the business account sees.
 */
export async function deliveryTag(key: string): Promise<string> {
  const digest = new Uint8Array(
    await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode(key)),
  );
  let binary = '';
  for (const byte of digest) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').slice(0, 22);
}

/**
 * `biz_opaque_callback_data` carrying `tag`: `rk:<tag>`, or `rk:<tag>|<caller's value>`; the
 * caller's value unchanged (and no tag) when both would not fit in 512 characters.
 */
export function tagCallbackData(tag: string, callerData: unknown): unknown {
  if (callerData === undefined || callerData === null) return `rk:${tag}`;
  if (typeof callerData !== 'string') return callerData;
  const tagged = `rk:${tag}|${callerData}`;
  return tagged.length <= MAX_CALLBACK_DATA ? tagged : callerData;
}

/** Splits a status's `biz_opaque_callback_data` into retrykit's tag and the caller's value. */
export function splitCallbackData(value: string | undefined): {
  readonly tag: string | undefined;
  readonly callerData: string | undefined;
} {
  const match = value === undefined ? null : TAGGED.exec(value);
  if (match === null) return { tag: undefined, callerData: value };
  return { tag: match[1], callerData: match[2] };
}
