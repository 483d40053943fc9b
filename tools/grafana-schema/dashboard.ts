// The type every dashboard of ../../dashboards/json must satisfy, from Grafana's own published
// schema (@grafana/schema). tests/unit/dashboards/test_schema.py writes each dashboard as an
// object literal `export const dashboard: CheckedDashboard = {...}` into generated/ and runs
// `tsc --noEmit`: an object literal gets TypeScript's excess-property check, so a misspelt or
// unknown field fails as surely as a wrong type or a missing required one.
import type { AnnotationContainer, AnnotationQuery, Dashboard, DataQuery, FieldConfigSource, Panel, RowPanel } from '@grafana/schema';
import type * as Stat from '@grafana/schema/dist/esm/raw/composable/stat/panelcfg/x/StatPanelCfg_types.gen';
import type * as Table from '@grafana/schema/dist/esm/raw/composable/table/panelcfg/x/TablePanelCfg_types.gen';
import type * as TimeSeries from '@grafana/schema/dist/esm/raw/composable/timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen';

// JSON has no TypeScript enums: a string enum member is written as its value ("absolute" for
// ThresholdsMode.Absolute). Wire<T> is T with every string enum replaced by the union of its
// values (a template literal type), recursively; numbers, booleans and unknowns stay as they are.
type Wire<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends ReadonlyArray<infer U>
      ? Array<Wire<U>>
      : T extends object
        ? { [K in keyof T]: Wire<T[K]> }
        : T;

// The query models of the two datasource plugins the dashboards use. @grafana/schema leaves a
// target open (DataQuery plus plugin fields) and ships no type for these two plugins, so these
// are the fields of Grafana's PostgreSQL and Prometheus query editors that we write; anything
// else in a target fails the excess-property check.
interface SqlTarget extends DataQuery {
  editorMode?: 'code' | 'builder';
  format: 'table' | 'time_series';
  rawQuery?: boolean;
  rawSql: string;
}
interface PromTarget extends DataQuery {
  editorMode?: 'code' | 'builder';
  expr: string;
  legendFormat?: string;
  range?: boolean;
  instant?: boolean;
}

// A panel of one visualisation: its options and field config checked against that plugin's schema.
type PanelOf<Type extends string, Options, Custom> = Omit<Panel, 'type' | 'options' | 'fieldConfig' | 'targets'> & {
  type: Type;
  targets: Array<SqlTarget | PromTarget>;
  options: Options;
  fieldConfig: FieldConfigSource<Custom>;
};

type LeitstandPanel =
  | PanelOf<'timeseries', TimeSeries.Options, TimeSeries.FieldConfig>
  | PanelOf<'table', Table.Options, Table.FieldConfig>
  | PanelOf<'stat', Stat.Options, Record<string, never>>;

export type CheckedDashboard = Wire<Omit<Dashboard, 'panels' | 'annotations'>> & {
  annotations: Wire<Omit<AnnotationContainer, 'list'>> & { list: Array<Wire<AnnotationQuery<SqlTarget>>> };
  // the Leitstand dashboards always carry these (the unit tests check their values)
  uid: string;
  title: string;
  description: string;
  panels: Array<Wire<LeitstandPanel> | Wire<RowPanel>>;
};
