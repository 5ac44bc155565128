// The bounds of every CEL expression and every input it runs over. CEL has no loops or
// recursion, so the work an expression does is bounded by its size times the size of its input;
// these numbers bound both (see compile.ts for the constructs that would multiply).

/** Longest CEL source accepted (GCP allows 4096 characters for a condition). */
export const MAX_EXPRESSION_BYTES = 4096;

/** cel-js's structural limits, enforced by its parser. */
export const CEL_LIMITS = {
  maxAstNodes: 512,
  maxDepth: 24,
  maxListElements: 256,
  maxMapEntries: 64,
  maxCallArguments: 8,
} as const;

/** Our own check over the whole AST (cel-js's maxDepth does not count binary operators). */
export const MAX_AST_DEPTH = 32;
export const MAX_REGEX_LENGTH = 256;

/** The evaluation budget: what an input (claims, attributes, a request) may cost at most. */
export const MAX_INPUT_BYTES = 64 * 1024;
export const MAX_INPUT_DEPTH = 16;
export const MAX_INPUT_VALUES = 4096;
