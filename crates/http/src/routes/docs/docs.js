// Renders the service's OpenAPI document (/openapi.json) as a reference page.
// Vanilla JavaScript served by the service itself: no network access beyond this
// origin, and the DOM is built with textContent only, so no text of the document
// is ever parsed as HTML.
"use strict";

const METHODS = ["get", "put", "post", "delete", "patch"];

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

// Descriptions are Markdown; this handles what the document uses: paragraphs and `code`.
function markdown(text) {
  if (!text) return [];
  return text.split(/\n\s*\n/).map((paragraph) => {
    const p = el("p");
    paragraph.replace(/\s*\n\s*/g, " ").split("`").forEach((part, i) => {
      p.append(i % 2 ? el("code", {}, part) : document.createTextNode(part));
    });
    return p;
  });
}

function inline(text) {
  const [first] = markdown(text);
  return first ? Array.from(first.childNodes) : [];
}

function refName(ref) {
  return ref.split("/").pop();
}

function resolve(doc, item) {
  let seen = 0;
  while (item && item.$ref && seen++ < 10) {
    const path = item.$ref.replace(/^#\//, "").split("/");
    item = path.reduce((node, key) => (node ? node[key] : undefined), doc);
  }
  return item || {};
}

function schemaLink(name) {
  return el("a", { href: `#schema-${name}`, class: "type" }, name);
}

// A one-line summary of a schema: its type (or a link to a named schema) and constraints.
function typeOf(schema) {
  if (!schema) return [el("span", { class: "type" }, "any")];
  if (schema.$ref) return [schemaLink(refName(schema.$ref))];
  for (const key of ["oneOf", "anyOf", "allOf"]) {
    if (schema[key]) {
      const joiner = key === "allOf" ? " & " : " | ";
      const parts = [];
      schema[key].forEach((sub, i) => {
        if (i) parts.push(joiner);
        parts.push(...typeOf(sub));
      });
      return parts;
    }
  }
  if (schema.type === "array" || (Array.isArray(schema.type) && schema.type.includes("array"))) {
    return [...typeOf(schema.items), el("span", { class: "type" }, "[]")];
  }
  const types = Array.isArray(schema.type) ? schema.type.join(" | ") : schema.type || "any";
  const parts = [el("span", { class: "type" }, types + (schema.format ? ` (${schema.format})` : ""))];
  const constraints = [];
  if (schema.enum) constraints.push("one of " + schema.enum.map((v) => JSON.stringify(v)).join(", "));
  if (schema.minLength !== undefined) constraints.push(`≥ ${schema.minLength} chars`);
  if (schema.maxLength !== undefined) constraints.push(`≤ ${schema.maxLength} chars`);
  if (schema.minimum !== undefined) constraints.push(`≥ ${schema.minimum}`);
  if (schema.maximum !== undefined) constraints.push(`≤ ${schema.maximum}`);
  if (schema.minItems !== undefined) constraints.push(`≥ ${schema.minItems} items`);
  if (schema.default !== undefined) constraints.push(`default ${JSON.stringify(schema.default)}`);
  if (schema.pattern) constraints.push("pattern");
  if (constraints.length) parts.push(" ", el("span", { class: "constraint" }, constraints.join("; ")));
  return parts;
}

function example(value) {
  return el("pre", {}, JSON.stringify(value, null, 2));
}

function parameters(doc, operation) {
  const list = (operation.parameters || []).map((p) => resolve(doc, p));
  if (!list.length) return null;
  return [
    el("h4", {}, "Parameters"),
    el("table", {},
      el("tr", {}, el("th", {}, "Name"), el("th", {}, "In"), el("th", {}, "Type"), el("th", {}, "Description")),
      list.map((p) => el("tr", {},
        el("td", {}, el("code", {}, p.name), p.required ? el("span", { class: "req" }, " required") : null),
        el("td", {}, p.in),
        el("td", {}, typeOf(p.schema), p.style ? el("div", { class: "constraint" },
          `style ${p.style}, explode ${p.explode}`) : null),
        el("td", {}, inline(p.description))))),
  ];
}

function requestBody(doc, operation) {
  if (!operation.requestBody) return null;
  const body = resolve(doc, operation.requestBody);
  return [
    el("h4", {}, "Request body", body.required ? el("span", { class: "req" }, " required") : null),
    ...markdown(body.description),
    Object.entries(body.content || {}).map(([type, media]) => el("div", {},
      el("code", {}, type), " ", typeOf(media.schema),
      media.example !== undefined ? example(media.example) : null)),
  ];
}

function responses(doc, operation) {
  const rows = Object.entries(operation.responses || {}).map(([status, raw]) => {
    const response = resolve(doc, raw);
    const content = Object.entries(response.content || {});
    const headers = Object.entries(response.headers || {});
    const links = Object.entries(response.links || {});
    return el("tr", {},
      el("td", { class: `status s${status[0]}` }, status),
      el("td", {},
        markdown(response.description),
        headers.length ? el("div", {}, "Headers: ", headers.map(([name, h], i) => [
          i ? "; " : "", el("code", {}, name), h.description ? [" — ", ...inline(h.description)] : []])) : null,
        links.length ? el("div", {}, "Links: ", links.map(([name, link], i) => [
          i ? ", " : "", el("a", { href: `#op-${link.operationId}` }, name)])) : null),
      el("td", {}, content.map(([type, media]) => el("div", {},
        el("code", {}, type), " ", typeOf(media.schema),
        media.example !== undefined
          ? el("details", {}, el("summary", {}, "Example"), example(media.example))
          : null))));
  });
  return [
    el("h4", {}, "Responses"),
    el("table", { class: "responses" }, el("tr", {}, el("th", {}, "Status"), el("th", {}, "Description"), el("th", {}, "Body")), rows),
  ];
}

function security(doc, operation) {
  const requirements = operation.security || doc.security || [];
  if (!requirements.length) return el("p", { class: "auth" }, "No token needed.");
  const names = requirements.map((r) => Object.keys(r).join(" + ") || "none");
  const optional = names.includes("none");
  const schemes = names.filter((n) => n !== "none").join(" or ");
  return el("p", { class: "auth" }, optional ? `Token optional (${schemes}).` : `Needs a token: ${schemes}.`);
}

function operationCard(doc, path, method, operation) {
  return el("article", { class: "op", id: `op-${operation.operationId}` },
    el("h3", {}, el("span", { class: `method ${method}` }, method), el("span", { class: "path" }, path),
      el("span", { class: "summary" }, operation.summary || "")),
    markdown(operation.description),
    security(doc, operation),
    parameters(doc, operation),
    requestBody(doc, operation),
    responses(doc, operation));
}

function schemaSection(doc, name, schema) {
  const section = el("article", { class: "op", id: `schema-${name}` }, el("h3", {}, el("span", { class: "path" }, name)));
  section.append(...markdown(schema.description));
  const composite = schema.allOf || schema.anyOf || schema.oneOf;
  if (composite) section.append(el("p", {}, typeOf(schema)));
  for (const part of composite || [schema]) {
    if (part.$ref) continue;
    if (!part.properties) {
      if (part !== schema) section.append(...markdown(part.description));
      if (!composite) section.append(el("p", {}, typeOf(part)));
      continue;
    }
    const required = new Set(part.required || []);
    section.append(el("table", {},
      el("tr", {}, el("th", {}, "Field"), el("th", {}, "Type"), el("th", {}, "Description")),
      Object.entries(part.properties).map(([field, property]) => el("tr", {},
        el("td", {}, el("code", {}, field), required.has(field) ? el("span", { class: "req" }, " required") : null),
        el("td", {}, typeOf(property)),
        el("td", {}, inline(property.description))))));
    if (part.additionalProperties === false) {
      section.append(el("p", { class: "constraint" }, "No other fields."));
    }
  }
  if (schema.example !== undefined) section.append(example(schema.example));
  return section;
}

function render(doc) {
  document.title = `${doc.info.title} ${doc.info.version} — API reference`;
  document.getElementById("title").textContent = `${doc.info.title} API`;
  document.getElementById("version").textContent = `· version ${doc.info.version} · OpenAPI ${doc.openapi}`;
  const main = document.getElementById("main");
  const nav = document.getElementById("nav");
  main.replaceChildren(el("section", { class: "intro" }, markdown(doc.info.description)));
  nav.replaceChildren();

  const byTag = new Map((doc.tags || []).map((t) => [t.name, { tag: t, ops: [] }]));
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of METHODS) {
      const operation = item[method];
      if (!operation) continue;
      const tag = (operation.tags || ["other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, { tag: { name: tag }, ops: [] });
      byTag.get(tag).ops.push([path, method, operation]);
    }
  }
  for (const { tag, ops } of byTag.values()) {
    if (!ops.length) continue;
    nav.append(el("h2", {}, tag.name));
    const section = el("section", { id: `tag-${tag.name}` }, el("h2", {}, tag.name), markdown(tag.description));
    for (const [path, method, operation] of ops) {
      nav.append(el("a", { href: `#op-${operation.operationId}` },
        el("span", { class: `method ${method}` }, method), " ", el("span", { class: "path" }, path)));
      section.append(operationCard(doc, path, method, operation));
    }
    main.append(section);
  }

  const components = doc.components || {};
  const schemes = Object.entries(components.securitySchemes || {});
  if (schemes.length) {
    main.append(el("section", { id: "security" }, el("h2", {}, "Authentication"),
      el("table", {}, el("tr", {}, el("th", {}, "Name"), el("th", {}, "Kind"), el("th", {}, "Description")),
        schemes.map(([name, s]) => el("tr", {}, el("td", {}, el("code", {}, name)),
          el("td", {}, s.type === "http"
            ? `HTTP ${s.scheme}${s.bearerFormat ? ` (${s.bearerFormat})` : ""}`
            : [`${s.type} in ${s.in} `, el("code", {}, s.name)]),
          el("td", {}, inline(s.description)))))));
  }
  const schemas = Object.entries(components.schemas || {});
  if (schemas.length) {
    nav.append(el("h2", {}, "schemas"));
    const section = el("section", { id: "schemas" }, el("h2", {}, "Schemas"));
    for (const [name, schema] of schemas) {
      nav.append(el("a", { href: `#schema-${name}` }, name));
      section.append(schemaSection(doc, name, schema));
    }
    main.append(section);
  }
  if (location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
}

fetch("/openapi.json", { headers: { Accept: "application/json" } })
  .then((response) => {
    if (!response.ok) throw new Error(`GET /openapi.json answered ${response.status}`);
    return response.json();
  })
  .then(render)
  .catch((error) => {
    document.getElementById("main").replaceChildren(el("p", { class: "error" }, `Cannot render the document: ${error.message}`));
  });
