-- man.lua: a pandoc filter that turns one of the project's Markdown documents into
-- a man page (pandoc --to=man --lua-filter=man.lua).
--
-- The documents stay ordinary Markdown for readers on the web; this filter supplies
-- what man(7) expects:
--   * the opening "# NAME — what it is" heading becomes the NAME section
--     ("NAME \- what it is", as whatis and lexgrog parse it), a "(N)" after the name
--     is dropped, and a DESCRIPTION heading is added before any text that follows;
--   * the other headings move up one level (## becomes .SH, ### becomes .SS) and
--     section titles are upper-cased, except for code such as `[server]`;
--   * a "key | default | meaning" table becomes a list of tagged paragraphs,
--     `key = default` over its meaning, and a two-column table ("option | meaning")
--     one of its first cell over its second: wide tables do not fit a terminal,
--     tagged paragraphs (.TP) are what systemd's and nginx's pages use;
--   * metadata `see-also` ("switchboard(8), ...") appends a SEE ALSO section;
--   * text is set ragged-right without hyphenation (.ad l, .nh), so that paths and
--     option names are never split across lines.

local stringify = pandoc.utils.stringify

-- Upper-cases the words of a heading, leaving code spans as written.
local function upper_words(inlines)
  return pandoc.walk_inline(pandoc.Span(inlines), {
    Str = function(s) return pandoc.Str(pandoc.text.upper(s.text)) end,
  }).content
end

-- "switchboard(8)" -> "switchboard" in bold and "(8)" in roman, as man pages cite.
local function man_reference(text)
  local name, section = text:match("^%s*([%w%._-]+)(%(%w+%))%s*$")
  if name then
    return { pandoc.Strong({ pandoc.Str(name) }), pandoc.Str(section) }
  end
  return { pandoc.Str(text) }
end

local function cells_text(row)
  local texts = {}
  for i, cell in ipairs(row.cells) do
    texts[i] = stringify(cell.contents):lower()
  end
  return texts
end

-- The inlines of a cell that holds one line of text (a Plain or Para block).
local function cell_inlines(cell)
  local blocks = cell.contents
  if #blocks == 1 and (blocks[1].t == "Plain" or blocks[1].t == "Para") then
    return blocks[1].content
  end
  return nil
end

-- `key` = `default`, `key` (required), or just `key` when the default is "none".
local function option_term(key_cell, default_cell)
  local term = pandoc.List(cell_inlines(key_cell) or { pandoc.Str(stringify(key_cell.contents)) })
  local default = cell_inlines(default_cell)
  local text = stringify(default_cell.contents)
  if default and #default == 1 and default[1].t == "Code" then
    term:extend({ pandoc.Space(), pandoc.Str("="), pandoc.Space(), default[1] })
  elseif text == "required" then
    term:extend({ pandoc.Space(), pandoc.Emph({ pandoc.Str("(required)") }) })
  elseif text ~= "none" and text ~= "" then
    term:extend({ pandoc.Space(), pandoc.Str("(default:"), pandoc.Space() })
    term:extend(default or { pandoc.Str(text) })
    term:insert(pandoc.Str(")"))
  end
  return term
end

-- A cell's blocks as paragraphs (table cells hold Plain blocks).
local function paragraphs(cell)
  return pandoc.List(cell.contents):map(function(b)
    if b.t == "Plain" then return pandoc.Para(b.content) end
    return b
  end)
end

-- Rewrites a key/default/meaning table or a two-column table as a definition list;
-- leaves other tables alone.
local function option_table(tbl)
  local header = tbl.head.rows[1]
  if header == nil then return nil end
  local names = cells_text(header)
  local keyed = #names == 3 and names[1] == "key" and names[2] == "default"
                and names[3] == "meaning"
  if not keyed and #names ~= 2 then return nil end
  local items = {}
  for _, body in ipairs(tbl.bodies) do
    for _, row in ipairs(body.body) do
      local cells = row.cells
      if keyed then
        table.insert(items, { option_term(cells[1], cells[2]), { paragraphs(cells[3]) } })
      else
        local term = cell_inlines(cells[1]) or { pandoc.Str(stringify(cells[1].contents)) }
        table.insert(items, { term, { paragraphs(cells[2]) } })
      end
    end
  end
  return pandoc.DefinitionList(items)
end

function Pandoc(doc)
  local blocks = doc.blocks
  local out = pandoc.List({ pandoc.RawBlock("man", ".ad l\n.nh") })
  local first = blocks[1]
  local start = 1
  local name = pandoc.text.lower(stringify(doc.meta.title or ""))
  local description = ""

  -- NAME from the title heading: "switchboard(8) — WebSocket proxy". A document
  -- written otherwise still gives a page (with a warning), never a failed build.
  if first ~= nil and first.t == "Header" and first.level == 1 then
    start = 2
    local title = stringify(first.content)
    local n, d = title:match("^(.-)%s+—%s+(.+)$")
    if n then
      name, description = n:gsub("%(%w+%)$", ""), d
    else
      description = title
      io.stderr:write("man.lua: warning: the title does not read 'NAME — description': "
                      .. title .. "\n")
    end
  else
    io.stderr:write("man.lua: warning: the document does not open with '# NAME — description'\n")
  end
  out:insert(pandoc.Header(1, { pandoc.Str("NAME") }))
  out:insert(pandoc.Para({ pandoc.Str(name), pandoc.Space(), pandoc.RawInline("man", "\\-"),
                           pandoc.Space(), pandoc.Str(description) }))
  if blocks[start] ~= nil and blocks[start].t ~= "Header" then
    out:insert(pandoc.Header(1, { pandoc.Str("DESCRIPTION") }))
  end

  local has_see_also = false
  for i = start, #blocks do
    local b = blocks[i]
    if b.t == "Header" then
      local level = math.max(1, b.level - 1)
      local content = b.content
      if level == 1 then content = upper_words(content) end
      if stringify(content) == "SEE ALSO" then has_see_also = true end
      out:insert(pandoc.Header(level, content, b.attr))
    elseif b.t == "Table" then
      out:insert(option_table(b) or b)
    else
      out:insert(b)
    end
  end

  local see_also = doc.meta["see-also"]
  if see_also and not has_see_also then
    local refs = pandoc.List()
    for item in stringify(see_also):gmatch("[^,]+") do
      if #refs > 0 then refs:extend({ pandoc.Str(","), pandoc.Space() }) end
      refs:extend(man_reference(item))
    end
    out:insert(pandoc.Header(1, { pandoc.Str("SEE ALSO") }))
    out:insert(pandoc.Para(refs))
  end
  return pandoc.Pandoc(out, doc.meta)
end
