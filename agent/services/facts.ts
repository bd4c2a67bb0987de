import { implement } from '../service.ts'

export const factsService = implement('facts', agent => () => ({
  get: () => agent.facts(),
  ping: value => value,
}))
