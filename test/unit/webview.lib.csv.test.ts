// The panel's metrics export (webview/lib/csv.ts): columns, quoting and spreadsheet formulas
// defused.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { metricsCsv } from '../../webview/lib/csv';

describe('metrics CSV', () => {
  it('one row per record, one column per metric, quoted, formulas defused', () => {
    const csv = metricsCsv([
      { name: '=cmd|calc', records: [{ step: 1, kind: 'train', loss: 2.5, wall_s: 0.4 }, { step: 1, kind: 'eval', eval_loss: 2.4, note: 'a, "b"' }] },
    ]);
    assert.equal(csv, 'run,step,kind,wall_s,eval_loss,loss,note\r\n\'=cmd|calc,1,train,0.4,,2.5,\r\n\'=cmd|calc,1,eval,,2.4,,"a, ""b"""\r\n');
  });
});
