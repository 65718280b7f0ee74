declare module '*.sql' {
  const source: string;
  export default source;
}
