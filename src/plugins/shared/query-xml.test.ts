import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_XML_DEPTH, parseXml, textAt } from './query-xml.ts';

describe('parseXml (the AWS Query subset)', () => {
  it('reads nested elements, dropping the namespace, decoding entities and CDATA', () => {
    const root = parseXml(
      '<?xml version="1.0" encoding="UTF-8"?>\n<!-- c --><s:R xmlns:s="x"><A><B>1 &amp; &lt;2&gt; &#65;&#x42;</B>' +
        '<C><![CDATA[<raw>]]></C><D/></A></s:R>',
    );
    assert.equal(root.name, 'R');
    assert.equal(textAt(root, 'A', 'B'), '1 & <2> AB');
    assert.equal(textAt(root, 'A', 'C'), '<raw>');
    assert.equal(textAt(root, 'A', 'D'), '');
    assert.equal(textAt(root, 'A', 'Missing'), '');
  });

  const bad: Array<[string, RegExp]> = [
    ['<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>', /DTDs are not accepted/],
    ['<r>&bogus;</r>', /unknown entity &bogus;/],
    ['<r><a></b></r>', /closing tag <\/b> does not match/],
    ['<r><a>', /element <a> is not closed/],
    ['<r/><s/>', /more than one root element/],
    ['text', /text outside the root element/],
    ['', /no root element/],
    ['<html><body>oops', /is not closed/],
    ['<a>'.repeat(MAX_XML_DEPTH + 1), /nested too deeply/],
  ];
  for (const [text, message] of bad) {
    it(`refuses ${JSON.stringify(text.slice(0, 40))}`, () => {
      assert.throws(() => parseXml(text), { name: 'XmlError', message });
    });
  }
});
