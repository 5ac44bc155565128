// The subset of XML the AWS Query protocols (STS, EC2) answer with: elements, text, the XML declaration,
// comments, CDATA and the five predefined entities plus character references. Attributes (the
// xmlns) are skipped, namespace prefixes dropped. Anything else — a DOCTYPE, an entity
// declaration, a mismatched or unclosed tag — is not AWS speaking, and is refused. Untrusted
// input: the caller bounds its size; depth and element count are bounded here.

export interface XmlElement {
  readonly name: string;
  readonly children: XmlElement[];
  /** The element's own text (children's text excluded), entities decoded. */
  text: string;
}

export const MAX_XML_DEPTH = 32;
export const MAX_XML_ELEMENTS = 4096;

export class XmlError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'XmlError';
  }
}

const ENTITIES: Readonly<Record<string, string>> = {
  lt: '<',
  gt: '>',
  amp: '&',
  quot: '"',
  apos: "'",
};

function decode(s: string): string {
  return s.replace(/&([^;&\s]{1,10});/g, (_m, ref: string) => {
    if (Object.hasOwn(ENTITIES, ref)) return ENTITIES[ref] as string;
    const code = /^#x[0-9a-fA-F]{1,6}$/.test(ref)
      ? parseInt(ref.slice(2), 16)
      : /^#[0-9]{1,7}$/.test(ref)
        ? parseInt(ref.slice(1), 10)
        : -1;
    if (code < 0 || code > 0x10ffff) throw new XmlError(`unknown entity &${ref};`);
    return String.fromCodePoint(code);
  });
}

const localName = (qname: string) => qname.slice(qname.indexOf(':') + 1);
const NAME = /^[A-Za-z_][\w.:-]*/;

/** Parses one document; returns its root element. Throws XmlError. */
export function parseXml(text: string): XmlElement {
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) throw new XmlError('DTDs are not accepted');
  const stack: XmlElement[] = [];
  let root: XmlElement | null = null;
  let count = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const lt = text.indexOf('<', i);
    const chunk = text.slice(i, lt < 0 ? n : lt);
    if (chunk.trim() !== '') {
      const top = stack.at(-1);
      if (!top) throw new XmlError('text outside the root element');
      top.text += decode(chunk);
    }
    if (lt < 0) break;
    if (text.startsWith('<?', lt)) {
      const end = text.indexOf('?>', lt);
      if (end < 0) throw new XmlError('unterminated processing instruction');
      i = end + 2;
    } else if (text.startsWith('<!--', lt)) {
      const end = text.indexOf('-->', lt);
      if (end < 0) throw new XmlError('unterminated comment');
      i = end + 3;
    } else if (text.startsWith('<![CDATA[', lt)) {
      const end = text.indexOf(']]>', lt);
      const top = stack.at(-1);
      if (end < 0 || !top) throw new XmlError('misplaced CDATA section');
      top.text += text.slice(lt + 9, end);
      i = end + 3;
    } else {
      const gt = text.indexOf('>', lt);
      if (gt < 0) throw new XmlError('unterminated tag');
      const inner = text.slice(lt + 1, gt);
      i = gt + 1;
      if (inner.startsWith('/')) {
        const name = localName(inner.slice(1).trim());
        const open = stack.pop();
        if (!open || open.name !== name)
          throw new XmlError(`closing tag </${name.slice(0, 64)}> does not match`);
        continue;
      }
      const m = NAME.exec(inner);
      if (!m) throw new XmlError('malformed tag');
      if (root !== null && stack.length === 0) throw new XmlError('more than one root element');
      if (++count > MAX_XML_ELEMENTS) throw new XmlError('too many elements');
      const el: XmlElement = { name: localName(m[0]), children: [], text: '' };
      const parent = stack.at(-1);
      if (parent) parent.children.push(el);
      else root = el;
      if (!inner.endsWith('/')) {
        if (stack.length >= MAX_XML_DEPTH) throw new XmlError('nested too deeply');
        stack.push(el);
      }
    }
  }
  if (stack.length > 0) throw new XmlError(`element <${stack.at(-1)?.name ?? ''}> is not closed`);
  if (root === null) throw new XmlError('no root element');
  return root;
}

/** The element at `path` below `el` (first match per step), or null. */
export function childAt(el: XmlElement, ...path: string[]): XmlElement | null {
  let cur: XmlElement | undefined = el;
  for (const name of path) {
    cur = cur.children.find((c) => c.name === name);
    if (!cur) return null;
  }
  return cur;
}

/** The trimmed text at `path` below `el`, or "" when absent. */
export const textAt = (el: XmlElement, ...path: string[]): string =>
  childAt(el, ...path)?.text.trim() ?? '';
