/**
 * The main job in pieces, for a notebook or a script that shows each step where it happens
 * (notebooks/fashion-mnist.ipynb). `runPipeline` and `buildReport` are made of these same
 * pieces, so a study run piece by piece gives the figures and pictures that they give.
 */
import { imageGrid, learningCurves } from './reports/pictures.ts';
import { runSplit } from './runs/job-core.ts';
import { saveFeatures, writePipelineSummary } from './runs/pipeline.ts';

export const pieces = {
  /**
   * The indices into the training file of the images that a run of `trainMlp` or `trainCnn`
   * with this seed, validation share and training limit trains and validates on, drawn before
   * it trains: a stratified split, each class giving the same share to validation.
   */
  split: runSplit,
  /**
   * A trained CNN's features of the images it trained, validated and was tested on, saved as
   * NumPy files, as the pipeline saves them; returns what `trainFeaturesMlp` takes.
   */
  saveFeatures,
  /**
   * summary.json of a folder laid out as a pipeline's (mlp/, cnn/, features/,
   * cnn-features-mlp/), so that `buildReport` draws the three models side by side.
   */
  writeSummary: writePipelineSummary,
  /** A model's loss and accuracy per epoch as the report draws them, as SVG. */
  learningCurves,
  /** Fashion-MNIST images in a captioned grid as the report's galleries draw them, as SVG. */
  imageGrid,
};
