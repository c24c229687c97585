/**
 * The PDF report, read back with pdf.js: whose it is, the scan date, measurements with units, review, response,
 * flags, key images and the model card with "not for clinical use"; deterministic bytes.
 */
import { getDocument, OPS } from 'pdfjs-dist/legacy/build/pdf.mjs';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import type { ApiAnalysis } from '../api-schemas.js';
import { keyImages, largestTumourSlice } from './key-images.js';
import { renderReportPdf, type ReportDocumentInput } from './pdf-report.js';

/** A 16×16×8 head with a tumour (labels 1, 2, 4) centred on slice 5. */
function volumes() {
  const dims: [number, number, number] = [16, 16, 8];
  const image = new Float32Array(16 * 16 * 8);
  const labels = new Uint8Array(16 * 16 * 8);
  for (let k = 0; k < 8; k++)
    for (let j = 0; j < 16; j++)
      for (let i = 0; i < 16; i++) {
        const at = i + 16 * j + 256 * k;
        image[at] = 100 + i * 10 + j;
        const r = Math.hypot(i - 8, j - 8, (k - 5) * 2);
        labels[at] = r < 2 ? 4 : r < 3 ? 1 : r < 4 ? 2 : 0;
      }
  return {
    image: { dims, spacing: [1, 1, 2] as [number, number, number], data: image },
    labels: { dims, spacing: [1, 1, 2] as [number, number, number], data: labels },
  };
}

const analysis: ApiAnalysis = {
  id: '8d3f2a1c-0000-4000-8000-000000000001',
  patientId: 'a365f038-8069-4a91-a2be-d710cbdf93d0',
  studyUid: '2.25.123',
  status: 'succeeded',
  requestedBy: 'cdss-auto-analysis',
  requestedAt: '2026-11-02T10:00:00.000Z',
  finishedAt: '2026-11-02T10:01:00.000Z',
  model: { id: 'brats-demo', version: '0.1.0' },
  result: {
    volumes: { enhancingTumor: 12.345, tumorCore: 20.5, wholeTumor: 41.25 },
    largestDiameterMm: 38.04,
    flags: [{ code: 'rapid-growth', message: 'Whole tumour volume doubled in 30 days' }],
  },
  review: {
    status: 'approved',
    reviewer: 'demo-radiologist',
    reviewedAt: '2026-11-03T08:00:00.000Z',
    comment: 'Growth confirmed visually.',
  },
};

async function textOf(pdf: Buffer): Promise<{ pages: number; text: string; images: number }> {
  const document = await getDocument({ data: new Uint8Array(pdf), useSystemFonts: false }).promise;
  let text = '';
  let images = 0;
  for (let n = 1; n <= document.numPages; n++) {
    const page = await document.getPage(n);
    const content = await page.getTextContent();
    text += `${content.items.map((item) => ('str' in item ? item.str : '')).join(' ')}\n`;
    const ops = await page.getOperatorList();
    images += ops.fnArray.filter((fn) => fn === OPS.paintImageXObject).length;
  }
  return { pages: document.numPages, text: text.replace(/\s+/g, ' '), images };
}

describe('PDF report', () => {
  const { image, labels } = volumes();
  const input: ReportDocumentInput = {
    reportId: 'cdss-report-8d3f2a1c',
    patient: {
      id: analysis.patientId,
      name: 'Müller-Łukasz, Zoë',
      birthDate: '1970-03-04',
      sex: 'female',
      mrn: '1042',
    },
    analysis,
    study: { uid: '2.25.123', date: '2026-11-02', description: 'MRI BRAIN W/WO CONTRAST' },
    assessment: { status: 'progression', changePercent: 32.5, criteria: 'volumetric' },
    keyImages: keyImages(image, labels),
    model: {
      name: 'brats-demo',
      version: '0.1.0',
      intendedUse: 'Research and demonstration; not for clinical use',
      notForClinicalUse: true,
    },
    reviewerName: 'Dr. Rita Radiologist',
  };

  it('picks the slice where the tumour is largest and renders it with and without the overlay', () => {
    expect(largestTumourSlice(labels)).toBe(5);
    const [plain, overlay] = input.keyImages;
    const decoded = [plain!, overlay!].map((k) => PNG.sync.read(k.png));
    expect(decoded.map((d) => [d.width, d.height])).toEqual([
      [320, 320],
      [320, 320],
    ]);
    // The centre pixel is enhancing tumour: grey in one, tinted red in the other.
    const centre = (png: PNG) => [...png.data.subarray((160 * 320 + 160) * 4, (160 * 320 + 160) * 4 + 3)];
    const [r, g, b] = centre(decoded[0]!);
    expect(r).toBe(g);
    expect(g).toBe(b);
    const [r2, g2] = centre(decoded[1]!);
    expect(r2).toBeGreaterThan(g2!);
  });

  it('says whose it is, the scan date, measurements, review, response, flags and the model card', async () => {
    const pdf = await renderReportPdf(input);
    expect(pdf.subarray(0, 5).toString()).toBe('%PDF-');
    const { text, images } = await textOf(pdf);
    for (const expected of [
      'AI brain tumour MRI report',
      'NOT FOR CLINICAL USE — research and demonstration model',
      'Müller-Łukasz, Zoë',
      '1970-03-04',
      '1042 (EMR a365f038-8069-4a91-a2be-d710cbdf93d0)',
      '2026-11-02',
      'FINAL — approved',
      'Dr. Rita Radiologist (demo-radiologist), 2026-11-03 08:00 UTC',
      'Growth confirmed visually.',
      '⚠ Whole tumour volume doubled in 30 days',
      '12.35 mL',
      '20.50 mL',
      '41.25 mL',
      '38.0 mm',
      'Progressive disease, +32.5 % from baseline (volumetric criteria)',
      'Axial slice 6 of 8, T1 post-contrast with AI segmentation',
      'brats-demo 0.1.0',
      'Trained on synthetic data only',
    ])
      expect(text).toContain(expected);
    expect(text).toMatch(/NOT FOR CLINICAL USE · page 1 of \d/);
    expect(images).toBe(2);
  });

  it('renders the same bytes twice, and marks a pending result preliminary', async () => {
    expect((await renderReportPdf(input)).equals(await renderReportPdf(input))).toBe(true);
    const pending = await renderReportPdf({ ...input, analysis: { ...analysis, review: { status: 'pending' } } });
    expect((await textOf(pending)).text).toContain('PRELIMINARY — awaiting radiologist review');
  });

  it('refuses an analysis without a result', async () => {
    await expect(renderReportPdf({ ...input, analysis: { ...analysis, status: 'failed' } })).rejects.toThrow(
      /succeeded analysis/,
    );
  });
});
