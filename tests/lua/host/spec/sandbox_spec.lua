-- What a script can and cannot reach inside o2c's sandbox.  Run by
-- `o2c test tests/lua/host` under the same sandbox and budgets as scripts.

describe("the scripts' sandbox", function()
  it("has no io, debug, package or file loading", function()
    expect(io).to_be_nil()
    expect(debug).to_be_nil()
    expect(package).to_be_nil()
    expect(dofile).to_be_nil()
    expect(loadfile).to_be_nil()
    expect(collectgarbage).to_be_nil()
  end)

  it("keeps only os.time, os.date and os.clock", function()
    expect(os.execute).to_be_nil()
    expect(os.exit).to_be_nil()
    expect(os.getenv).to_be_nil()
    expect(os.remove).to_be_nil()
    expect(os.rename).to_be_nil()
    expect(os.tmpname).to_be_nil()
    expect(type(os.time())).to_equal("number")
    expect(type(os.date("%Y-%m-%d"))).to_equal("string")
    expect(type(os.clock())).to_equal("number")
  end)

  it("refuses binary chunks and string.dump", function()
    expect(string.dump).to_be_nil()
    local f, err = load("\27LuaT\0\25\147\r\n\26\n", "=bin", "b", {})
    expect(f).to_be_nil()
    expect(err).to_match("binary")
  end)

  it("loads text only into an explicit environment", function()
    expect(function() local f = load("return 1") end).to_fail_with("bad argument #4")
    local env = { answer = 42 }
    expect(load("return answer", "=inline", "t", env)()).to_equal(42)
    expect(load("return io", "=inline", "t", env)()).to_be_nil()
  end)

  it("lets require reach nothing outside the script's folder", function()
    expect(function() local m = require("../x") end).to_fail_with("only files inside")
    expect(function() local m = require("/etc/passwd") end).to_fail_with("only files inside")
    expect(function() local m = require("spec/../../x") end).to_fail_with("only files inside")
  end)

  it("does not let a script change string methods for others", function()
    expect(getmetatable("")).to_equal("string")
  end)
end)
