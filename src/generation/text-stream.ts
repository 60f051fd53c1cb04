/**
 * Token ids to text, one token at a time: what a row has said so far, where it hits a stop string,
 * and which part of it can be handed out yet.
 */

/** U+FFFD: what a decoder writes for the bytes of a character whose last byte has not come yet. */
const REPLACEMENT = '\uFFFD';

/** How many earlier tokens are decoded in front of the ones being read (see {@link RowText}). */
const CONTEXT_TOKENS = 4;

/** Tokens decoded again per step at most, before the text so far is settled (see {@link RowText}). */
const WINDOW_TOKENS = 32;

/**
 * The new text of one row as its tokens arrive.
 *
 * The text is the decoding of the new ids read in context: the last few prompt ids are decoded in
 * front of them and their own text cut off again, because a decoder treats the start of a
 * sequence specially (SentencePiece drops the space of the first word), so "Once upon a" goes on
 * with " time", not "time". Once {@link WINDOW_TOKENS} tokens have been read with all their text
 * handed out, that text is settled: later pushes decode only the tokens after it (behind a few
 * before it, as context), so a step's decoding does not grow with the row.
 *
 * {@link push} returns the text that is final: never a trailing U+FFFD (the first bytes of a
 * multibyte character from byte-fallback or byte-level tokens, which become the character when
 * its last byte arrives), never text that could be the start of a stop string, and nothing after
 * a stop string. The pieces joined equal {@link text} whenever the decoder only ever appends to
 * what it wrote before, as byte-level BPE and SentencePiece decoders do.
 */
export class RowText {
  /** Tokens since the text was last settled. */
  private ids: number[] = [];
  /** The tokens before them, decoded in front of them for context. */
  private context: number[];
  private contextText: string;
  /** The text before `ids`: final, all handed out. */
  private settled = '';
  private handedOut = '';
  /** The row's new text, cut before the first stop string. */
  text = '';
  /** Whether the text reached a stop string. */
  stopped = false;

  constructor(
    private readonly decode: (ids: number[]) => string,
    /** The prompt's ids; its last few give the new text its context. */
    prompt: readonly number[],
    private readonly stops: readonly string[],
  ) {
    this.context = prompt.slice(-CONTEXT_TOKENS);
    this.contextText = decode(this.context);
  }

  /** Add one token; return the text that became final with it (often ''). */
  push(id: number): string {
    this.ids.push(id);
    const full = this.decode([...this.context, ...this.ids]);
    // A decoder that rewrites the context's text (rare) is read without context instead.
    let text = this.settled + (full.startsWith(this.contextText) ? full.slice(this.contextText.length) : this.decode(this.ids));
    // Settled text held no stop string: only text from just before its end can start one.
    const at = firstStop(text, this.stops, this.settled.length);
    if (at >= 0) {
      text = text.slice(0, at);
      this.stopped = true;
    }
    this.text = text;
    const piece = this.take(this.stopped);
    // Nothing held back (no partial character, no stop-string start): later tokens decode after a short context.
    if (!this.stopped && this.ids.length >= WINDOW_TOKENS && this.handedOut === text) {
      this.context = [...this.context, ...this.ids].slice(-CONTEXT_TOKENS);
      this.contextText = this.decode(this.context);
      this.settled = text;
      this.ids = [];
    }
    return piece;
  }

  /** The rest of the text once the row has ended (incomplete characters and stop prefixes included). */
  finish(): string {
    return this.take(true);
  }

  private take(final: boolean): string {
    let ready = this.text;
    if (!final) {
      let end = ready.length;
      while (end > 0 && ready[end - 1] === REPLACEMENT) end--;
      ready = ready.slice(0, end);
      ready = ready.slice(0, ready.length - stopPrefixLength(ready, this.stops));
    }
    // Text already handed out cannot be taken back: a decoder that rewrote it gets no new pieces
    // until its text extends what was handed out again.
    if (!ready.startsWith(this.handedOut)) return '';
    const piece = ready.slice(this.handedOut.length);
    this.handedOut = ready;
    return piece;
  }
}

/** Where the earliest stop string starts in `text`, or -1; none ends before `after`. */
function firstStop(text: string, stops: readonly string[], after: number): number {
  let first = -1;
  for (const s of stops) {
    const i = text.indexOf(s, Math.max(0, after - s.length + 1));
    if (i >= 0 && (first < 0 || i < first)) first = i;
  }
  return first;
}

/** The length of the longest end of `text` that is the start of a stop string (0 if none). */
function stopPrefixLength(text: string, stops: readonly string[]): number {
  let longest = 0;
  for (const s of stops) {
    for (let n = Math.min(s.length - 1, text.length); n > longest; n--) {
      if (text.endsWith(s.slice(0, n))) {
        longest = n;
        break;
      }
    }
  }
  return longest;
}
