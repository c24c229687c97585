/**
 * The report that goes back into the chart: a PDF rendered with pdfkit (DejaVu Sans embedded, so names in any
 * European script print as written). It says whose it is, the scan's date, the volumes and measurements with units
 * and one precision, the key images, the review state and the reviewer, the response assessment, and the model card,
 * with "not for clinical use" on every page for the demo model. Rendering is deterministic (dates come from the
 * review, not the clock), so a re-render after a crash gives the same document.
 */
import { createRequire } from 'node:module';
import PDFDocument from 'pdfkit';
import type { ApiAnalysis, Assessment } from '../api-schemas.js';
import type { KeyImage } from './key-images.js';

const require = createRequire(import.meta.url);
const FONT = require.resolve('dejavu-fonts-ttf/ttf/DejaVuSans.ttf');
const FONT_BOLD = require.resolve('dejavu-fonts-ttf/ttf/DejaVuSans-Bold.ttf');

/** Everything the report shows. */
export interface ReportDocumentInput {
  /** The DiagnosticReport's identifier value (also the document's file name stem). */
  reportId: string;
  patient: { id: string; name: string; birthDate?: string; sex?: string; mrn?: string };
  /** A succeeded analysis with its review. */
  analysis: ApiAnalysis;
  study: { uid: string; date?: string; description?: string };
  assessment?: Pick<Assessment, 'status' | 'changePercent'> & { criteria?: string };
  keyImages: readonly KeyImage[];
  model: { name: string; version: string; intendedUse: string; notForClinicalUse: boolean };
  /** Reviewer's display name (the review holds the id). */
  reviewerName?: string;
}

const STATUS_TEXT = {
  pending: 'PRELIMINARY — awaiting radiologist review',
  approved: 'FINAL — approved',
  rejected: 'ENTERED IN ERROR — rejected',
};
const CATEGORY_TEXT: Record<Assessment['status'], string> = {
  'complete-response': 'Complete response',
  'partial-response': 'Partial response',
  stable: 'Stable disease',
  progression: 'Progressive disease',
  'not-evaluable': 'Not evaluable (one timepoint or no prior)',
};
const RED = '#b71c1c';
const GREY = '#555555';

/**
 * Renders the report.
 * @param input - the report's content
 * @returns the PDF bytes
 */
export async function renderReportPdf(input: ReportDocumentInput): Promise<Buffer> {
  const { analysis, patient, study, model } = input;
  const result = analysis.result;
  if (analysis.status !== 'succeeded' || !result) throw new Error('a report needs a succeeded analysis');
  const review = analysis.review ?? { status: 'pending' as const };
  const stamp = new Date(review.reviewedAt ?? analysis.finishedAt ?? analysis.requestedAt);
  const doc = new PDFDocument({
    size: 'A4',
    margins: { top: 56, bottom: 56, left: 56, right: 56 },
    bufferPages: true,
    info: {
      Title: `AI brain tumour MRI report ${input.reportId}`,
      Author: 'CDSS reference server',
      Subject: model.notForClinicalUse ? 'Not for clinical use' : 'AI brain tumour volumetry',
      Creator: `CDSS (${model.name} ${model.version})`,
      CreationDate: stamp,
      ModDate: stamp,
    },
  });
  doc.registerFont('body', FONT);
  doc.registerFont('bold', FONT_BOLD);
  const chunks: Buffer[] = [];
  doc.on('data', (chunk: Buffer) => chunks.push(chunk));
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on('end', () => resolve(Buffer.concat(chunks)));
    doc.on('error', reject);
  });

  const width = doc.page.width - 112;
  const heading = (text: string): void => {
    doc.moveDown(0.6).font('bold').fontSize(12).fillColor('black').text(text);
    doc.moveDown(0.2).font('body').fontSize(10);
  };
  const row = (label: string, value: string): void => {
    const y = doc.y;
    doc.font('bold').fontSize(10).fillColor(GREY).text(label, 56, y, { width: 150 });
    doc
      .font('body')
      .fillColor('black')
      .text(value, 210, y, { width: width - 154 });
    doc.x = 56;
  };
  const mL = (value: number): string => `${value.toFixed(2)} mL`;

  // Title and the demo model's warning.
  doc.font('bold').fontSize(16).fillColor('black').text('AI brain tumour MRI report');
  doc.font('body').fontSize(9).fillColor(GREY).text(`Report ${input.reportId}`);
  if (model.notForClinicalUse) {
    doc.moveDown(0.4);
    const y = doc.y;
    doc.rect(56, y, width, 24).fill(RED);
    doc
      .font('bold')
      .fontSize(11)
      .fillColor('white')
      .text('NOT FOR CLINICAL USE — research and demonstration model', 56, y + 6, { width, align: 'center' });
    doc.x = 56;
    doc.y = y + 30;
  }

  heading('Patient');
  row('Name', patient.name);
  if (patient.birthDate) row('Date of birth', patient.birthDate);
  if (patient.sex) row('Sex', patient.sex);
  row('Patient id', patient.mrn ? `${patient.mrn} (EMR ${patient.id})` : patient.id);

  heading('Study');
  row('Scan date', study.date ?? 'unknown (no StudyDate in the images)');
  if (study.description) row('Description', study.description);
  row('Study UID', study.uid);

  heading('Status');
  row('Report status', STATUS_TEXT[review.status]);
  if (review.status !== 'pending')
    row(
      'Reviewed by',
      `${input.reviewerName ?? review.reviewer ?? 'unknown'}${review.reviewer && input.reviewerName ? ` (${review.reviewer})` : ''}, ${stamp.toISOString().replace('T', ' ').slice(0, 16)} UTC`,
    );
  if (review.comment) row('Review comment', review.comment);
  if (result.flags.length > 0) row('Flags', result.flags.map((f) => `⚠ ${f.message}`).join('\n'));

  heading('Measurements');
  row('Enhancing tumour', mL(result.volumes.enhancingTumor));
  row('Tumour core', mL(result.volumes.tumorCore));
  row('Whole tumour', mL(result.volumes.wholeTumor));
  if (result.largestDiameterMm !== undefined) row('Largest diameter', `${result.largestDiameterMm.toFixed(1)} mm`);
  if (result.sumOfProductsMm2 !== undefined)
    row(
      'Sum of products (RANO)',
      `${result.sumOfProductsMm2.toFixed(0)} mm² over ${result.lesions?.length ?? 0} lesion(s)`,
    );
  if (input.assessment)
    row(
      'Response',
      `${CATEGORY_TEXT[input.assessment.status]}${
        input.assessment.changePercent !== undefined
          ? `, ${input.assessment.changePercent > 0 ? '+' : ''}${input.assessment.changePercent.toFixed(1)} % from baseline`
          : ''
      }${input.assessment.criteria ? ` (${input.assessment.criteria} criteria)` : ''}`,
    );
  if (result.conclusion) row('Conclusion', result.conclusion);

  if (input.keyImages.length > 0) {
    heading('Key images');
    const size = Math.min(230, (width - 16) / input.keyImages.length);
    if (doc.y + size + 40 > doc.page.height - 56) doc.addPage();
    const top = doc.y;
    input.keyImages.forEach((image, index) => {
      const left = 56 + index * (size + 16);
      doc.image(image.png, left, top, { fit: [size, size] });
      doc
        .font('body')
        .fontSize(8)
        .fillColor(GREY)
        .text(
          `Axial slice ${image.slice + 1} of ${image.slices}, T1 post-contrast${image.overlay ? ' with AI segmentation' : ''}`,
          left,
          top + size + 4,
          { width: size },
        );
    });
    doc.x = 56;
    doc.y = top + size + 30;
    doc
      .fontSize(8)
      .fillColor(GREY)
      .text('Overlay: red enhancing tumour, yellow necrotic core, green oedema.', { width });
  }

  heading('Model card');
  row('Model', `${model.name} ${model.version}`);
  row('Intended use', model.intendedUse);
  row(
    'Method',
    'Automated 3D segmentation of T1, T1 post-contrast, T2 and FLAIR (BraTS labels); volumes from voxel counts.',
  );
  row(
    'Limitations',
    model.notForClinicalUse
      ? 'Trained on synthetic data only. Not validated on patients. NOT FOR CLINICAL USE.'
      : 'Results are preliminary until a radiologist approves them; check the key images.',
  );

  // Every page: whose report it is, the warning, and the page number.
  const range = doc.bufferedPageRange();
  for (let index = range.start; index < range.start + range.count; index++) {
    doc.switchToPage(index);
    const bottom = doc.page.height - 40;
    doc.page.margins.bottom = 0;
    doc
      .font('body')
      .fontSize(7)
      .fillColor(model.notForClinicalUse ? RED : GREY)
      .text(
        `${patient.name} · ${study.date ?? study.uid} · ${model.notForClinicalUse ? 'NOT FOR CLINICAL USE · ' : ''}page ${index + 1} of ${range.count}`,
        56,
        bottom,
        { width, align: 'center', lineBreak: false },
      );
  }
  doc.end();
  return done;
}
