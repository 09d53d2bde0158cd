// The loader's diagnostics for a scenario text, as a person reads them (file:line:col message);
// fails the spec when the text is accepted.
import { ScenarioError, formatDiagnostic, loadScenarioText } from '../../harness/scenario/load.js';

export function errorsOf(text: string): string[] {
  try {
    loadScenarioText(text, 'x.yaml');
  } catch (e) {
    if (e instanceof ScenarioError) return e.errors.map(formatDiagnostic);
    throw e;
  }
  throw new Error('expected the scenario to be rejected');
}
