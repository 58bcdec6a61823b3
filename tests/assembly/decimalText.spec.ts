// Numbers as the decision records and configuration errors write them.
import { decimal3 } from "../../assembly/decimalText";

describe("decimal3", () => {
  it("writes numbers as JSON does, rounded to 3 decimals", () => {
    expect(decimal3(0)).toBe("0");
    expect(decimal3(3)).toBe("3");
    expect(decimal3(-12)).toBe("-12");
    expect(decimal3(1.5)).toBe("1.5");
    expect(decimal3(0.05)).toBe("0.05");
    expect(decimal3(0.001)).toBe("0.001");
    expect(decimal3(0.125)).toBe("0.125");
    expect(decimal3(-0.4567)).toBe("-0.457");
    expect(decimal3(2.0004)).toBe("2");
    expect(decimal3(1000000)).toBe("1000000");
    expect(decimal3(0.01)).toBe("0.01");
    expect(decimal3(NaN)).toBe("0");
    expect(decimal3(Infinity)).toBe("0");
    expect(decimal3(1e300)).toBe("1000000000000000");
  });
});
