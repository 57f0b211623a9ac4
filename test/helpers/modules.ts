// Linear modules as a model's layout lists them, for tests that need only their names and sizes.
import type { LinearModule } from '../../server/models/modules';

/** A module whose weight is `<name>.weight`, stored as nn.Linear's [d_out, d_in] unless said. */
export function linearModule(name: string, dIn: number, dOut: number, layout: LinearModule['layout'] = 'out_in'): LinearModule {
  return { name, weight: `${name}.weight`, bias: null, layout, dIn, dOut };
}
